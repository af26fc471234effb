"""Membership changes on one real RaftProcess (real LMDB and IPC): changes are answered once
committed, a learner never counts toward a majority, and a restarted member takes its
configuration from its store (snapshot and log), not from --peers (issue 16)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from dqueue.node.store import Store
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.ipc_client import RaftClient, RaftClientError, RequestTimeout
from dqueue.protocol.member_context import decode_context
from dqueue.testing import free_port
from tests.unit.node.test_process import Running, _wait_leader, client, config

__all__ = ["client", "config"]  # the fixtures of test_process, used here


def _add(client: RaftClient, member: str, port: int) -> dict:
    return client.command({"op": "member_add", "id": member, "raft_addr": f"127.0.0.1:{port}",
                           "http_addr": "127.0.0.1:18080"})


def _enqueue(client: RaftClient, n: int) -> None:
    for i in range(n):
        outcome = client.command({"op": "enqueue", "tasks": [{"id": f"t{i}", "type": "x"}]})
        assert outcome["ok"], outcome


@pytest.mark.parametrize("snapshot_entries", [5, 100_000])
def test_a_learner_is_kept_across_a_restart_from_snapshot_or_log(config, client,
                                                                 snapshot_entries):
    config = dataclasses.replace(config, snapshot_entries=snapshot_entries)
    learner_port = free_port()
    node = Running(config)
    try:
        _wait_leader(client)
        added = _add(client, "n2", learner_port)
        assert added["ok"], added
        assert (added["value"]["voters"], added["value"]["learners"]) == (["n1"], ["n2"])
        # One voter and one learner: a learner counted in the majority (2 of 2) would block.
        _enqueue(client, 12)
        cluster = client.read({"op": "cluster"})
        assert (cluster["voters"], cluster["learners"]) == (["n1"], ["n2"])
        assert {m["id"]: m["suffrage"] for m in cluster["members"]} == {
            "n1": "voter", "n2": "learner"}
        assert node.process.transport.peer_ids == ["n2"]  # connected from its context
        if snapshot_entries == 5:
            deadline = time.monotonic() + 10
            while client.read({"op": "metrics"})["snapshot_index"] < 5:
                assert time.monotonic() < deadline, "no snapshot was stored"
                time.sleep(0.01)  # polling interval of a deadline wait
    finally:
        assert node.stop() == 0
    store = Store(config.data_dir)
    try:
        loaded = store.load()
    finally:
        store.close()
    if snapshot_entries == 5:
        # The snapshot records the configuration at its index, not the --peers voters.
        assert loaded.snapshot is not None
        assert (loaded.snapshot.members, loaded.snapshot.learners) == (("n1",), ("n2",))
        ctx = decode_context(dict(loaded.snapshot.contexts)["n2"])
        assert ctx.raft_addr == f"127.0.0.1:{learner_port}"
    else:
        assert loaded.snapshot is None
    node = Running(config)  # --peers still names n1 alone
    try:
        membership = node.process.raft.membership
        assert (membership.voters, membership.learners) == (("n1",), ("n2",))
        assert node.process.transport.peer_ids == ["n2"]
        _wait_leader(client)
        removed = client.command({"op": "member_remove", "id": "n2"})
        assert removed["ok"] and removed["value"]["learners"] == []
        deadline = time.monotonic() + 10
        while node.process.transport.peer_ids:  # dropped once the removal committed
            assert time.monotonic() < deadline, "the removed learner is still a peer"
            time.sleep(0.01)  # polling interval of a deadline wait
    finally:
        assert node.stop() == 0


def test_changes_that_do_not_fit_are_refused_before_anything_is_proposed(config, client):
    node = Running(config)
    try:
        _wait_leader(client)
        _enqueue(client, 1)  # after the leader's first entry: the commit index rests
        last = client.read({"op": "health"})["commit_index"]
        refusals = {
            ErrorCode.MEMBER_EXISTS: {"op": "member_add", "id": "n1", "raft_addr": "h:1",
                                      "http_addr": "h:2"},
            ErrorCode.NOT_FOUND: {"op": "member_promote", "id": "n9"},
            ErrorCode.INVALID_STATE: {"op": "member_promote", "id": "n1"},
            ErrorCode.INVALID_FIELD: {"op": "member_add", "id": "n2", "raft_addr": "nope",
                                      "http_addr": "h:2"},
            ErrorCode.MISSING_FIELD: {"op": "member_add", "id": "n2", "raft_addr": "h:1"},
            ErrorCode.UNKNOWN_FIELD: {"op": "member_remove", "id": "n2", "extra": 1},
        }
        for code, cmd in refusals.items():
            outcome = client.command(cmd)
            assert (outcome["ok"], outcome["code"]) == (False, code), cmd
        # Removing the last voter (the leader itself, alone): no other voter to hand over to.
        outcome = client.command({"op": "member_remove", "id": "n1"})
        assert outcome["code"] == ErrorCode.INVALID_STATE
        assert client.read({"op": "health"})["commit_index"] == last  # nothing proposed
    finally:
        assert node.stop() == 0


def test_a_promoted_member_counts_toward_the_majority(config, client):
    node = Running(dataclasses.replace(config, request_timeout_ms=500))
    try:
        _wait_leader(client)
        assert _add(client, "n2", free_port())["ok"]
        # The promotion is in force once appended (thesis 4.1): two voters, one of them
        # absent, so neither it nor anything after it commits, and it is answered timeout.
        with pytest.raises(RequestTimeout):
            client.command({"op": "member_promote", "id": "n2"}, timeout_ms=500)
        with pytest.raises(RaftClientError):
            client.command({"op": "enqueue", "tasks": [{"id": "late", "type": "x"}]},
                           timeout_ms=500)
    finally:
        assert node.stop() == 0
