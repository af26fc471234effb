"""The Raft process freezes long-lived objects for the garbage collector (dqueue/node/gcpause.py):
frozen tasks must still be freed once acked and pruned, or every task would leak."""

from __future__ import annotations

import pytest

from dqueue.queue import QueueConfig
from dqueue.testing.raftproc import wait_raft

pytestmark = pytest.mark.integration

TASKS = 20_000
PER_COMMAND = 500


def test_frozen_tasks_are_freed_once_acked_and_pruned(cluster_factory):
    cluster = cluster_factory(1, queue=QueueConfig(retention_ms=1_000), snapshot_entries=20)
    cluster.start()
    cluster.leader()
    client = cluster.client("n1")
    before = client.read({"op": "metrics"})
    for first in range(0, TASKS, PER_COMMAND):
        tasks = [{"id": f"t{n}", "type": "t", "payload": {"n": n}}
                 for n in range(first, first + PER_COMMAND)]
        assert client.command({"op": "enqueue", "tasks": tasks})["ok"]
    held = []
    while len(held) < TASKS:
        leased = client.command({"op": "lease", "worker_id": "w", "max_tasks": 100})
        held += [(task["id"], task["lease"]["token"]) for task in leased["value"]["tasks"]]
    filled = client.read({"op": "metrics"})
    # The freezer ran while the tasks were alive, and froze them.
    assert filled["gc_ms"]["count"] > before["gc_ms"]["count"]
    assert filled["gc_frozen_objects"] >= before["gc_frozen_objects"] + TASKS
    for first in range(0, TASKS, PER_COMMAND):
        items = [{"id": task_id, "worker_id": "w", "token": token}
                 for task_id, token in held[first:first + PER_COMMAND]]
        assert client.command({"op": "ack_batch", "items": items})["ok"]

    def freed() -> bool:
        # Any applied command prunes the tasks finished for longer than retention_ms (an ack of
        # a task that does not exist here: an empty lease is no longer proposed; an idle leader
        # proposes a tick within a minute).
        client.command({"op": "ack", "id": "no-such-task", "worker_id": "w"})
        stats = client.read({"op": "stats"})
        frozen = client.read({"op": "metrics"})["gc_frozen_objects"]
        # Once pruned, their objects go back to the allocator: what stays frozen is a small
        # fraction of the tasks.
        return sum(stats["by_status"].values()) == 0 and (
            frozen < before["gc_frozen_objects"] + TASKS // 10)

    wait_raft(freed, deadline_s=30, what="acked tasks pruned and their frozen objects freed")
