"""RaftProcess in a thread of the test: one member, real LMDB and IPC, restart from disk."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dqueue.config import NodeConfig
from dqueue.node.apply_failed import ApplyFailed
from dqueue.node.codec import encode_item, join_items
from dqueue.node.ipc_server import CmdRequest
from dqueue.node.process import RaftProcess
from dqueue.node.proposals import ProposalBatcher
from dqueue.node.requests import Stage, monotonic_ms
from dqueue.node.store import Store, StoredHardState
from dqueue.protocol.ipc_client import RaftClient, RaftClientError
from dqueue.queue import QueueConfig, command_from_plain
from dqueue.raft import (
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Role,
    message_to_plain,
)
from dqueue.testing import free_port
from tests.depth import examples
from tests.unit.plain_values import PLAIN


class Running:
    """A RaftProcess built and run on its own thread (its sockets never leave that thread)."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.process: RaftProcess | None = None
        self.status: int | None = None
        self._built = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._built.wait(10)

    def _run(self) -> None:
        self.process = RaftProcess(self.config)
        self._built.set()
        self.status = self.process.run()

    def stop(self) -> int | None:
        assert self.process is not None
        self.process.request_stop()
        self._thread.join(10)
        return self.status


@pytest.fixture
def config(tmp_path) -> NodeConfig:
    return NodeConfig(id="n1", data_dir=str(tmp_path / "n1"), raft_addr=f"127.0.0.1:{free_port()}",
                      tick_ms=10, snapshot_entries=5)


def test_the_queue_starts_under_the_configured_queue_settings(config):
    settings = QueueConfig(lease_ms=7_000, max_retries=5, retention_ms=9)
    process = RaftProcess(dataclasses.replace(config, queue=settings))
    try:
        assert process.queue.config == settings
    finally:
        process.close()


@pytest.fixture
def client(config) -> Iterator[RaftClient]:
    with RaftClient(config.ipc_endpoint()) as c:
        yield c


def _wait_leader(client: RaftClient) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if client.read({"op": "health"}, timeout_ms=200)["role"] == "leader":
                return
        except RaftClientError:
            pass
        time.sleep(0.01)  # polling interval of a deadline wait
    raise AssertionError("no leader")


def test_commands_survive_a_restart_through_snapshot_and_log(config, client):
    node = Running(config)
    _wait_leader(client)
    for i in range(12):
        task = {"id": f"t{i}", "type": "x", "payload": i}
        assert client.command({"op": "enqueue", "tasks": [task]})["ok"]
    deadline = time.monotonic() + 10
    while client.read({"op": "metrics"})["snapshot_index"] < 5:  # taken by a forked child
        assert time.monotonic() < deadline, "no snapshot was stored"
        time.sleep(0.01)  # polling interval of a deadline wait
    assert node.stop() == 0
    node = Running(config)
    try:
        assert node.process.snapshot_index >= 5  # restored from the stored snapshot
        _wait_leader(client)
        for i in range(12):
            assert client.read({"op": "get", "id": f"t{i}"})["payload"] == i
    finally:
        assert node.stop() == 0


@pytest.fixture
def idle(config) -> Iterator[tuple[RaftProcess, list[bytes], list[tuple[bytes, str, Any]]]]:
    """A RaftProcess that is not running: the test drives intake, batching and apply itself.

    Yields the process, the entry data its batcher proposed, and the answers it sent.
    """
    process = RaftProcess(config)
    proposed: list[bytes] = []
    answers: list[tuple[bytes, str, Any]] = []
    process.batcher = ProposalBatcher(1 << 19, proposed.append,
                                      process.router.on_proposals_dropped)
    process.ipc.send_res = lambda identity, rid, key, value: answers.append((identity, rid, value))
    process.ipc.send_err = lambda identity, rid, code, *_: answers.append((identity, rid, code))
    process.leadership.role = Role.LEADER
    try:
        yield process, proposed, answers
    finally:
        process.close()


def _enqueue(task_id: str) -> dict[str, Any]:
    return {"op": "enqueue", "tasks": [{"id": task_id, "type": "x"}]}


def test_one_batch_entry_answers_each_request_it_carries_with_its_own_outcome(idle):
    process, proposed, answers = idle
    for i in range(30):
        process.router.accept_command(CmdRequest(b"api%d" % i, f"r{i}", _enqueue(f"t{i}"),
                                                 5_000, 0))
    assert proposed == []
    process._flush_proposals()
    assert len(proposed) == 1  # the whole turn is one entry
    process._apply(Ready(committed_entries=(Entry(1, 1, EntryType.NORMAL, proposed[0]),)))
    assert [(identity, rid) for identity, rid, _ in answers] == [
        (b"api%d" % i, f"r{i}") for i in range(30)]
    assert [value["value"]["tasks"][0]["id"] for _, _, value in answers] == [
        f"t{i}" for i in range(30)]
    assert process.router.table.pending == {}
    assert process.queue.stats()["by_status"]["pending"] == 30
    assert process.counters["commands_applied_total"] == 30
    assert process.applied == 1


def test_entry_of_an_older_log_layout_applies_and_answers(idle):
    process, _, answers = idle
    process.router.accept_command(CmdRequest(b"api", "r1", _enqueue("t1"), 5_000, 0))
    legacy = msgpack.packb(["r1", {**_enqueue("t1"), "now_ms": 5}])  # one command per entry
    process._apply(Ready(committed_entries=(Entry(1, 1, EntryType.NORMAL, legacy),)))
    assert [(rid, value["ok"]) for _, rid, value in answers] == [("r1", True)]


def test_batch_lost_to_a_leader_change_answers_none_of_its_requests(idle):
    process, proposed, answers = idle
    for i in range(3):
        process.router.accept_command(CmdRequest(b"api", f"r{i}", _enqueue(f"t{i}"), 5_000, 0))
    process._flush_proposals()
    # This leader is deposed before its entry commits: the new leader's entry at index 1 is
    # another batch (a forwarded command and a tick), not ours.
    process._on_soft_state(Role.FOLLOWER, None)
    theirs = join_items([encode_item("x1", {**_enqueue("x1"), "now_ms": 9}),
                         encode_item("", {"op": "tick", "now_ms": 9})])
    assert theirs != proposed[0]
    process._apply(Ready(committed_entries=(Entry(1, 2, EntryType.NORMAL, theirs),)))
    assert answers == []  # no request is told its command succeeded
    assert process.queue.get_task("x1") is not None
    assert all(process.queue.get_task(f"t{i}") is None for i in range(3))
    # Still waiting: for the next leader, to which they go again with their sessions.
    assert process.router.table.count(Stage.WAIT_LEADER) == 3
    process.router.expire(monotonic_ms() + 10_000)
    assert sorted(answers) == [(b"api", f"r{i}", "timeout") for i in range(3)]


def _record_ready_handling(process: RaftProcess) -> list[str]:
    """Replace the write, the sends, apply and advance of ``process`` by recorders."""
    events: list[str] = []
    apply = process._apply
    process.store.save = lambda **kw: events.append("save")  # type: ignore[method-assign]
    process._send_raft = lambda msg: events.append(  # type: ignore[method-assign]
        msg.type.name.lower())
    process._apply = lambda rd: (events.append("apply"), apply(rd))  # type: ignore[method-assign]
    process.raft.advance = lambda rd: events.append("advance")  # type: ignore[method-assign]
    return events


def test_leader_answers_what_committed_before_it_syncs_the_next_entries(idle):
    process, proposed, _ = idle
    process.router.accept_command(CmdRequest(b"api", "r1", _enqueue("t1"), 5_000, 0))
    process._flush_proposals()
    events = _record_ready_handling(process)
    process.ipc.send_res = lambda identity, rid, key, value: events.append(f"answer {rid}")
    append = Message(MessageType.APPEND_ENTRIES, "n2", "n1", 1, entries=())
    process._handle_ready(Ready(
        hard_state=HardState(0, None, 1), entries=(Entry(2, 1, EntryType.NORMAL, b"\x90"),),
        committed_entries=(Entry(1, 1, EntryType.NORMAL, proposed[0]),), messages=(append,)))
    # The append leaves first (the followers write in parallel), then the committed batch is
    # applied and answered, and only then is the next batch written and synced.
    assert events == ["append_entries", "apply", "answer r1", "save", "advance"]


def test_follower_syncs_and_responds_before_it_applies(idle):
    process, _, _ = idle
    process.leadership.role = Role.FOLLOWER
    events = _record_ready_handling(process)
    batch = join_items([encode_item("x1", {**_enqueue("x1"), "now_ms": 9})])
    response = Message(MessageType.APPEND_ENTRIES_RESPONSE, "n2", "n1", 1, index=2)
    process._handle_ready(Ready(
        hard_state=HardState(0, None, 1), entries=(Entry(2, 1, EntryType.NORMAL, batch),),
        committed_entries=(Entry(1, 1, EntryType.NORMAL, batch),), messages=(response,)))
    assert events == ["save", "append_entries_response", "apply", "advance"]
    assert process.queue.get_task("x1") is not None


def test_a_commit_index_alone_is_written_with_the_next_write_or_at_a_clean_stop(idle):
    process, _, _ = idle
    process.leadership.role = Role.FOLLOWER
    process.raft.advance = lambda rd: None  # type: ignore[method-assign]
    batch = join_items([encode_item("x1", {**_enqueue("x1"), "now_ms": 9})])
    process._handle_ready(Ready(hard_state=HardState(1, "n2", 0),
                                entries=(Entry(1, 1, EntryType.NORMAL, batch),)))
    assert process.store.load().hard_state == StoredHardState(1, "n2", 0)
    # Only the commit index moved: no LMDB transaction for it.
    syncs = process.store.syncs
    process._handle_ready(Ready(hard_state=HardState(1, "n2", 1),
                                committed_entries=(Entry(1, 1, EntryType.NORMAL, batch),)))
    assert process.store.syncs == syncs
    assert process.store.load().hard_state == StoredHardState(1, "n2", 0)
    process._handle_ready(Ready(entries=(Entry(2, 1, EntryType.NORMAL, batch),)))
    assert process.store.load().hard_state == StoredHardState(1, "n2", 1)  # with the entry
    process._handle_ready(Ready(hard_state=HardState(1, "n2", 2)))
    data_dir = process.config.data_dir
    process.close()
    reopened = Store(data_dir)
    try:
        assert reopened.load().hard_state == StoredHardState(1, "n2", 2)  # at the stop
    finally:
        reopened.close()


# ------------------------------------------------------------------ apply never skips

@pytest.mark.parametrize(("data", "position", "cause"), [
    (b"\xc1", None, "undecodable"),  # not msgpack at all
    (msgpack.packb([1, 2]), None, "request id"),  # msgpack, not a batch of items
    (join_items([encode_item("r1", {"op": "no_such_op", "now_ms": 1})]), 0, "op"),
    (join_items([encode_item("r1", {**_enqueue("t1"), "now_ms": 1}),
                 encode_item("r2", {"op": "cancel", "now_ms": 1})]), 1, "id"),
])
def test_an_entry_that_fails_to_decode_or_apply_stops_the_process(idle, data, position, cause):
    """Skipping it would leave this member's queue different from the others' for good."""
    process, _, _ = idle
    ok = join_items([encode_item("r0", {**_enqueue("t0"), "now_ms": 1})])
    with pytest.raises(ApplyFailed) as failed:
        process._apply(Ready(committed_entries=(Entry(4, 1, EntryType.NORMAL, ok),
                                                Entry(5, 1, EntryType.NORMAL, data))))
    assert (failed.value.index, failed.value.position) == (5, position)
    assert cause in failed.value.cause and "entry 5" in str(failed.value)
    assert process.queue.get_task("t0") is not None  # what came before was applied


def _three_member_process(tmp_path: Any) -> RaftProcess:
    """A RaftProcess of n1 in a three-member cluster whose peers are not running."""
    peers = {n: f"127.0.0.1:{free_port()}" for n in ("n1", "n2", "n3")}
    return RaftProcess(NodeConfig(id="n1", data_dir=str(tmp_path / "n1"),
                                  raft_addr=peers["n1"], peers=peers))


def test_the_leader_appends_no_forwarded_entry_that_would_stop_every_member(tmp_path):
    """Raft(..., proposal_validator=entry_is_applicable): a PROPOSE whose entry does not
    decode into valid commands is dropped and counted, never appended (and so never fails
    every member's apply)."""
    process = _three_member_process(tmp_path)
    raft = process.raft
    raft.campaign(False)
    raft.step(Message(MessageType.REQUEST_VOTE_RESPONSE, "n1", "n2", raft.current_term))
    assert raft.role is Role.LEADER
    last = raft.log.last_index()
    bad = Entry(0, 0, EntryType.NORMAL, join_items([encode_item("r", {"op": "cancel"})]))
    raft.step(Message(MessageType.PROPOSE, "n1", "n2", 0, entries=(bad,)))
    assert raft.log.last_index() == last and raft.proposals_rejected == 1
    good = Entry(0, 0, EntryType.NORMAL,
                 join_items([encode_item("r", {**_enqueue("t1"), "now_ms": 1})]))
    raft.step(Message(MessageType.PROPOSE, "n1", "n2", 0, entries=(good,)))
    assert raft.log.last_index() == last + 1
    process.close()


# ------------------------------------------------------------------ hostile peers

def _raft_plain_with(field: int, value: Any) -> list[Any]:
    plain = message_to_plain(Message(MessageType.HEARTBEAT, "n1", "n2", 1, commit=0))
    plain[field] = value
    return plain


def test_any_peer_message_is_taken_or_dropped_without_raising(tmp_path):
    """Whatever arrives from a member's connection, of any kind, _on_peer never raises (the
    sends and IPC answers it causes are encoded for real, so a value that could not leave
    the process fails too)."""
    process = _three_member_process(tmp_path)
    config = process.config
    kinds = st.sampled_from([b"raft", b"hello", b"fwd", b"fwd_res", b"", b"\xff"])
    raft_like = st.builds(_raft_plain_with, st.integers(0, 14), PLAIN)

    @settings(max_examples=examples(300), deadline=None)
    @given(st.sampled_from(["n2", "n3"]), kinds, st.one_of(PLAIN, raft_like))
    @example("n2", b"raft", _raft_plain_with(3, (1 << 64) - 1))  # the found attack
    @example("n2", b"hello", {"http_addr": "\ud800:80"})
    def check(sender: str, kind: bytes, body: Any) -> None:
        process._on_peer(sender, kind, body)
        process._handle_readies()
        for _ in range(2 * config.election_ticks):  # what it took in, it acts on (campaigns)
            process.raft.tick()
            process._handle_readies()

    try:
        check()
    finally:
        process.close()


@pytest.mark.parametrize("cmd", [
    {"op": "lease", "worker_id": "w", "max_tasks": 2, "nonce": "cd" * 16},
    {"op": "ack_batch", "items": [{"id": "a", "worker_id": "w", "token": "k"},
                                  {"id": "b", "worker_id": "w", "token": None}]},
    {"op": "enqueue", "tasks": [{"id": "t", "type": "x"}]},
], ids=lambda cmd: cmd["op"])
def test_propose_keeps_the_parse_of_the_plain_command_it_stamps(idle, cmd):
    process, _, _ = idle
    added: list[tuple[dict[str, Any], Any]] = []
    process.batcher.add = lambda rid, plain, command, session=None: added.append((plain, command))
    process.wall_ms = lambda: 9_000
    parsed_before = command_from_plain({**cmd, "now_ms": 1})  # parsed at intake, earlier
    process.propose("r1", cmd, parsed_before)
    (plain, command), = added
    assert plain["now_ms"] == 9_000
    if cmd["op"] == "lease":
        assert plain["nonce"] != cmd["nonce"]  # the leader draws it
    assert command == command_from_plain(plain)
