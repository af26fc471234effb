"""The SDK against a real 3-node cluster whose leader is killed while producers enqueue."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from dqueue.client import Client, RetryPolicy, TaskStatus
from dqueue.client.errors import DQueueError
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration


def test_leader_killed_mid_stream_loses_and_duplicates_nothing(tmp_path):
    cluster = NodeCluster(tmp_path, 3)
    try:
        cluster.start()
        leader = cluster.leader()
        stop = threading.Event()
        returned: list[list[tuple[int, str]]] = [[], []]
        failures: list[DQueueError] = []

        def produce(slot: int) -> None:
            client = Client(cluster.urls(), retry=RetryPolicy(deadline_s=60.0))
            n = 0
            while not stop.is_set():
                try:
                    task = client.enqueue("sdk", {"producer": slot, "n": n})
                except DQueueError as exc:  # only after the 60 s deadline
                    failures.append(exc)
                    return
                returned[slot].append((n, task.id))
                n += 1

        threads = [threading.Thread(target=produce, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        wait_for(lambda: min(len(r) for r in returned) >= 20, 60, "enqueues before the kill")
        cluster.kill(leader)
        at_kill = [len(r) for r in returned]
        survivors = [n for n in cluster.ids if n != leader]
        wait_for(lambda: all(len(r) >= k + 20 for r, k in zip(returned, at_kill, strict=True)),
                 60, "enqueues after the new leader took over")
        stop.set()
        for thread in threads:
            thread.join(70)
        assert not failures

        new_leader = cluster.leader(among=survivors)
        assert new_leader != leader
        client = Client([cluster.url(n) for n in survivors])
        # Every enqueue call that returned is there once, with its payload.
        for slot, calls in enumerate(returned):
            for n, task_id in calls:
                task = client.get(task_id)
                assert task.payload == {"producer": slot, "n": n}
                assert task.status is TaskStatus.PENDING
        ids = [task_id for calls in returned for _, task_id in calls]
        assert len(set(ids)) == len(ids)
        # And nothing else: no task was created twice by a retried call.
        stats = client.stats()
        by_status = stats["by_type"]["sdk"]
        assert sum(by_status.values()) == len(ids)
        leased = client.lease_many(100, "checker", types=["sdk"])
        seen: Counter[tuple[int, int]] = Counter()
        while leased:
            for task in leased:
                seen[(task.payload["producer"], task.payload["n"])] += 1
                client.ack(task)
            leased = client.lease_many(100, "checker", types=["sdk"])
        assert max(seen.values()) == 1 and len(seen) == len(ids)
    finally:
        cluster.close()
