"""Client sessions on a real 3-node cluster: a write in flight through a follower when the
leader dies is sent again to the new leader and answered soon after its election, once."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest

from dqueue.testing.raftproc import enqueue_cmd, wait_raft

pytestmark = pytest.mark.integration

# Issue 12: answered within 1 s of the new leader's election (measured: about 0.1 s).
ANSWER_AFTER_ELECTION_S = 1.0


def _new_leader(cluster: Any, nodes: list[str], old_term: int) -> str | None:
    for node in nodes:
        health = cluster.health(node, timeout_ms=200)
        if health["role"] == "leader" and health["term"] > old_term:
            return node
    return None


def test_a_write_through_a_follower_survives_a_leader_kill_answered_once(cluster_factory):
    cluster = cluster_factory(3)
    cluster.start()
    leader = cluster.leader()
    old_term = cluster.health(leader)["term"]
    survivors = [n for n in cluster.ids if n != leader]
    follower = survivors[0]
    got: dict[str, Any] = {}

    def write() -> None:
        client = cluster.new_client(follower)
        try:
            got["outcome"] = client.command(enqueue_cmd("in-flight"), timeout_ms=15_000)
        except Exception as exc:  # reported by the assertion below
            got["error"] = exc
        got["answered_at"] = time.monotonic()
        client.close()

    # The leader stops before the forward reaches it, and dies with it unread: only a
    # re-send can get the write applied (before client sessions it waited for its timeout).
    cluster.signal(leader, signal.SIGSTOP)
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    wait_raft(lambda: cluster.client(follower).read({"op": "metrics"})["requests_pending"] == 1,
              what="the write to be forwarded to the stopped leader")
    cluster.kill(leader)
    winner = wait_raft(lambda: _new_leader(cluster, survivors, old_term), 20.0,
                       "a new leader", interval_s=0.01)
    elected_at = time.monotonic()
    writer.join(20)
    assert "error" not in got, got.get("error")
    outcome = got["outcome"]
    assert outcome["ok"] and outcome["value"]["duplicates"] == [False], outcome
    assert got["answered_at"] - elected_at < ANSWER_AFTER_ELECTION_S, (
        got["answered_at"] - elected_at)
    assert cluster.client(follower).read({"op": "metrics"})["requests_resent_total"] == 1
    # Exactly one task for it, on every survivor.
    index = cluster.health(winner)["commit_index"]
    for node in survivors:
        cluster.wait_applied(node, index)
        stats = cluster.stats(node)
        assert stats["by_status"]["pending"] == 1, stats
        task = cluster.client(node).read({"op": "get", "id": "in-flight"}, stale=True)
        assert task["id"] == "in-flight" and task["status"] == "pending", task



def test_writes_through_a_follower_across_a_leader_kill_all_succeed_each_applied_once(
        cluster_factory):
    """Clients keep enqueueing and leasing through one follower while the leader is kill -9ed:
    every command is answered with success and its first outcome (a task created, not an "id
    exists" refusal of a second copy), none times out, and each applies once: the tasks leased
    are exactly those the answers name (a lease applied twice would lease one more)."""
    cluster = cluster_factory(3)
    cluster.start()
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    prefill = [f"p{i}" for i in range(2_000)]
    for start in range(0, len(prefill), 500):
        assert cluster.client(leader).command({"op": "enqueue", "tasks": [
            {"id": t, "type": "t"} for t in prefill[start:start + 500]]})["ok"]
    outcomes: dict[str, Any] = {}
    stop = threading.Event()

    def writer(name: str) -> None:
        client = cluster.new_client(follower)
        try:
            seq = 0
            while not stop.is_set():
                lease = seq % 2 == 1
                cmd = ({"op": "lease", "worker_id": name, "max_tasks": 1} if lease
                       else enqueue_cmd(f"{name}-{seq}"))
                try:
                    outcomes[f"{name}-{seq}"] = client.command(cmd, timeout_ms=10_000)
                except Exception as exc:  # reported by the assertion below
                    outcomes[f"{name}-{seq}"] = exc
                seq += 1
        finally:
            client.close()

    writers = [threading.Thread(target=writer, args=(f"w{i}",), daemon=True) for i in range(8)]
    for thread in writers:
        thread.start()
    wait_raft(lambda: len(outcomes) >= 200, what="commands before the kill")
    cluster.kill(leader)
    survivors = [n for n in cluster.ids if n != leader]
    cluster.leader(survivors)
    before = len(outcomes)
    wait_raft(lambda: len(outcomes) >= before + 200, what="commands after the new leader")
    stop.set()
    for thread in writers:
        thread.join(20)
    failed = {k: o for k, o in outcomes.items() if not (isinstance(o, dict) and o.get("ok"))}
    assert not failed, failed
    enqueued = [o for o in outcomes.values() if "duplicates" in o["value"]]
    assert all(o["value"]["duplicates"] == [False] for o in enqueued)
    leased = [t["id"] for o in outcomes.values() for t in o["value"].get("tasks", [])
              if "duplicates" not in o["value"]]
    assert len(leased) == len(set(leased)) == len(outcomes) - len(enqueued)
    index = cluster.health(cluster.leader(survivors))["commit_index"]
    for node in survivors:
        cluster.wait_applied(node, index)
        by_status = cluster.stats(node)["by_status"]
        assert by_status["leased"] == len(leased), (by_status, len(leased))
        assert by_status["pending"] == len(prefill) + len(enqueued) - len(leased)
