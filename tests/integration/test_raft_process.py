"""The Raft process as real processes on loopback: start, elect, commit, forward, read, refuse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import zmq

from dqueue.config import NodeConfig
from dqueue.node.transport import tcp_endpoint
from dqueue.protocol.ipc_client import BadRequest, NoLeader
from dqueue.queue import QueueConfig
from dqueue.testing.raftproc import enqueue_cmd, wait_raft

pytestmark = pytest.mark.integration


def test_single_node_elects_itself_and_commits(cluster_factory):
    cluster = cluster_factory(1)
    cluster.start()
    assert cluster.leader() == "n1"
    client = cluster.client("n1")
    outcome = client.command(enqueue_cmd("t1", "email", {"to": "a@b"}))
    assert outcome["ok"] is True
    task = outcome["value"]["tasks"][0]
    assert (task["id"], task["status"], task["payload"]) == ("t1", "pending", {"to": "a@b"})
    assert task["created_at_ms"] > 1_700_000_000_000  # stamped by the leader's clock
    assert client.read({"op": "get", "id": "t1"})["status"] == "pending"
    assert client.read({"op": "get", "id": "nope"}) is None
    leased = client.command({"op": "lease", "worker_id": "w1", "max_tasks": 1})
    assert leased["value"]["tasks"][0]["lease"]["worker_id"] == "w1"
    stats = client.read({"op": "stats"})
    assert stats["by_status"]["leased"] == 1
    assert stats["raft"]["role"] == "leader"
    with pytest.raises(BadRequest, match="tasks"):
        client.command({"op": "enqueue", "tasks": []})
    with pytest.raises(BadRequest, match="op"):
        client.read({"op": "drop_table"})
    metrics = client.read({"op": "metrics"})
    assert metrics["ipc_bad_request_total"] == 2
    assert metrics["fsync_total"] >= 2
    assert metrics["role"] == "leader"
    assert metrics["persist_ms"]["count"] == metrics["fsync_total"]


def test_long_poll_lease_is_parked_until_a_task_arrives(cluster_factory):
    cluster = cluster_factory(1)
    cluster.start()
    cluster.leader()
    waiting = cluster.new_client("n1")
    try:
        started = time.monotonic()
        empty = waiting.command({"op": "lease", "worker_id": "w", "max_tasks": 1}, wait_ms=300)
        assert empty == {"ok": True, "value": {"tasks": []}}
        assert time.monotonic() - started >= 0.25
        assert cluster.client("n1").read({"op": "metrics"})["requests_parked"] == 0
    finally:
        waiting.close()


def test_three_nodes_commit_through_any_member(cluster_factory):
    cluster = cluster_factory(3)
    cluster.start()
    leader = cluster.leader()
    followers = [n for n in cluster.ids if n != leader]
    # A follower forwards the command to the leader node, which stamps and proposes it.
    for i, node in enumerate([leader, *followers]):
        assert cluster.client(node).command(enqueue_cmd(f"t{i}"))["ok"]
    # ReadIndex reads on every member see every acknowledged write.
    for node in cluster.ids:
        for i in range(3):
            assert cluster.client(node).read({"op": "get", "id": f"t{i}"})["id"] == f"t{i}"
    assert cluster.health(followers[0])["leader_id"] == leader
    # The leader's HTTP address comes from its hello over the peer transport.
    wait_raft(lambda: cluster.health(followers[0])["leader_http"]
              == cluster.configs[leader].http_addr, what="the leader hint")
    view = cluster.client(leader).read({"op": "cluster"})
    assert [m["id"] for m in view["members"]] == cluster.ids
    assert all(m["lag"] is not None for m in view["members"])


def test_no_leader_answer_names_the_last_known_leader(cluster_factory):
    cluster = cluster_factory(3)
    cluster.start("n1")  # alone: no quorum, no leader
    client = cluster.client("n1")
    wait_raft(lambda: client.read({"op": "health"}, timeout_ms=200), what="n1 up")
    with pytest.raises(NoLeader) as info:
        client.command(enqueue_cmd("x"), timeout_ms=300)
    assert info.value.leader_id is None
    with pytest.raises(NoLeader):
        client.read({"op": "get", "id": "x"}, timeout_ms=300)
    assert client.read({"op": "get", "id": "x"}, stale=True) is None


def test_garbage_on_peer_port_and_ipc_is_counted_not_fatal(cluster_factory):
    cluster = cluster_factory(3)
    cluster.start()
    leader = cluster.leader()
    target = next(n for n in cluster.ids if n != leader)
    other = next(n for n in cluster.ids if n not in (leader, target))
    ctx = zmq.Context()
    socks = []
    try:
        stranger = ctx.socket(zmq.DEALER)
        stranger.setsockopt(zmq.IDENTITY, b"mallory")
        spoof = ctx.socket(zmq.DEALER)  # claims to be a member and sends junk in valid framing
        spoof.setsockopt(zmq.IDENTITY, other.encode())
        ipc = ctx.socket(zmq.DEALER)
        socks = [stranger, spoof, ipc]
        for sock in socks:
            sock.setsockopt(zmq.LINGER, 0)
        stranger.connect(tcp_endpoint(cluster.configs[target].raft_addr, bind=False))
        spoof.connect(tcp_endpoint(cluster.configs[target].raft_addr, bind=False))
        ipc.connect(cluster.configs[target].ipc_endpoint())
        junk = [[b"\x00"], [b"\x01", b"raft", b"\xc1\xc1"], [b"\x02", b"raft", b"\x90"],
                [b"\x01", b"raft", b"\x93\x01\x02\x03"], [b"\x01", b"fwd", b"\x80"],
                [b"\x01", b"zzz", b"\x80"], [b"\x01", b"raft", b"\x9f" + b"\x00" * 15]]
        for frames in junk:
            stranger.send_multipart(frames)
            spoof.send_multipart(frames)
            ipc.send_multipart(frames)

        def counted():
            m = cluster.client(target).read({"op": "metrics"})
            dropped = m["peer_malformed_total"] + m["raft_malformed_total"]
            return (m["peer_unknown_total"] >= len(junk) and dropped >= len(junk)
                    and m["ipc_malformed_total"] >= len(junk))
        wait_raft(counted, what="garbage to be counted")
    finally:
        for sock in socks:
            sock.close(0)
        ctx.term()
    assert cluster.is_running(target)
    assert cluster.client(target).command(enqueue_cmd("after-garbage"))["ok"]


def test_sigterm_on_the_leader_transfers_leadership_then_exits_cleanly(cluster_factory):
    cluster = cluster_factory(3)
    cluster.start()
    leader = cluster.leader()
    others = [n for n in cluster.ids if n != leader]
    for i in range(20):
        assert cluster.client(leader).command(enqueue_cmd(f"s{i}"))["ok"]
    term = cluster.health(leader)["term"]
    assert cluster.stop(leader) == 0
    new_leader = cluster.leader(among=others)
    health = cluster.health(new_leader)
    # A transfer elects the target at once (TimeoutNow), one term later, with no pre-vote
    # round lost to the check-quorum lease.
    assert health["term"] == term + 1
    assert "leadership_transfer" in cluster.log_text(leader)
    for i in range(20):
        assert cluster.client(new_leader).read({"op": "get", "id": f"s{i}"}) is not None


def test_a_raft_port_in_use_is_refused_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        config = NodeConfig(id="n1", data_dir=str(tmp_path / "n1"), raft_addr=addr)
        done = subprocess.run(
            [sys.executable, "-m", "dqueue.node", "--config-json", config.to_json()],
            capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot bind the raft address {addr}" in done.stderr
    assert f"held by pid {os.getpid()}" in done.stderr


def test_long_poll_lease_through_a_follower_gets_the_next_task(cluster_factory):
    cluster = cluster_factory(3)
    cluster.start()
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    got: dict[str, object] = {}

    def lease() -> None:
        client = cluster.new_client(follower)
        try:
            got["outcome"] = client.command(
                {"op": "lease", "worker_id": "w9", "types": ["mail"], "max_tasks": 1},
                timeout_ms=2_000, wait_ms=10_000)
        finally:
            client.close()

    waiter = threading.Thread(target=lease, daemon=True)
    waiter.start()
    # The follower forwarded it; the leader applied an empty lease and parked it.
    wait_raft(lambda: cluster.client(leader).read({"op": "metrics"})["requests_parked"] == 1,
              what="the lease to be parked on the leader")
    assert cluster.client(leader).command(enqueue_cmd("other", task_type="sms"))["ok"]
    assert cluster.client(leader).command(enqueue_cmd("wanted", task_type="mail"))["ok"]
    waiter.join(15)
    tasks = got["outcome"]["value"]["tasks"]
    assert [t["id"] for t in tasks] == ["wanted"]
    assert tasks[0]["lease"]["worker_id"] == "w9"


def test_members_apply_the_leaders_queue_settings_whatever_their_own(cluster_factory):
    # Each member is configured with its own default max_retries; the replicated state must
    # use the one of the leader that took each command in, on every member alike.
    cluster = cluster_factory(3)
    own = {"n1": 5, "n2": 6, "n3": 7}
    for node_id, retries in own.items():
        cluster.with_config(node_id, queue=QueueConfig(max_retries=retries))
    cluster.start()
    first = cluster.leader()
    cluster.client(first).command(enqueue_cmd("under-first"))

    def retries_everywhere(task_id: str, nodes: list[str]) -> set[int]:
        found = set()
        for node_id in nodes:
            task = cluster.client(node_id).read({"op": "get", "id": task_id}, stale=True)
            found.add(None if task is None else task["max_retries"])
        return found

    wait_raft(lambda: retries_everywhere("under-first", cluster.ids) == {own[first]}, 10,
              "every member to hold the task with the first leader's max_retries")
    assert cluster.stop(first) == 0  # transfers leadership
    rest = [n for n in cluster.ids if n != first]
    second = cluster.leader(among=rest)
    cluster.client(second).command(enqueue_cmd("under-second"))
    wait_raft(lambda: retries_everywhere("under-second", rest) == {own[second]}, 10,
              "the survivors to hold the task with the second leader's max_retries")
    assert retries_everywhere("under-first", rest) == {own[first]}
    cluster.start(first)
    wait_raft(lambda: retries_everywhere("under-second", [first]) == {own[second]}, 20,
              "the restarted member to apply the second leader's settings too")
