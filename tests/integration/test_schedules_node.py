"""A schedule every second on a real 3-node cluster through three leader kills (issue 17):
each slot is enqueued exactly once, and none is missed (an election takes far less than the
10 s after which a slot counts as missed: docs/schedules.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dqueue.client import Client
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

PREFIX = "schedule.beat."


def beat_slots(client: Client) -> list[int]:
    """The slot of every task the schedule enqueued (they stay pending: nobody leases)."""
    page = client.list_tasks("pending", type="beat", limit=1_000)
    return sorted(int(task.id[len(PREFIX):]) for task in page.tasks)


@pytest.mark.slow
def test_every_slot_once_through_three_leader_kills(tmp_path: Path) -> None:
    cluster = NodeCluster(tmp_path, 3, start=True)
    try:
        cluster.leader()
        with Client(cluster.urls()) as client:
            made = client.put_schedule("beat", "beat", every_seconds=1)
            assert made["every_seconds"] == 1 and made["fired"] == 0
            for _ in range(3):
                fired = client.get_schedule("beat")["fired"]
                wait_for(lambda fired=fired: client.get_schedule("beat")["fired"] >= fired + 3,
                         30, "three more slots fired")
                old = cluster.leader()
                cluster.kill(old)
                rest = [n for n in cluster.ids if n != old]
                assert cluster.leader(among=rest) != old
                fired = client.get_schedule("beat")["fired"]
                wait_for(lambda fired=fired: client.get_schedule("beat")["fired"] >= fired + 2,
                         30, "slots fired under the new leader")
                cluster.start(old)  # back, so that the next kill leaves a majority
                cluster.leader()
            record = client.get_schedule("beat")
            slots = beat_slots(client)
        assert record["last_error"] is None and record["last_missed_slot"] is None
        # Exactly once: one task per slot fired, and every slot's task is a distinct one.
        assert len(slots) == record["fired"] == len(set(slots))
        # None missed: from the first slot to the last, every second has its task.
        assert slots == list(range(slots[0], slots[-1] + 1, 1_000))
        assert len(slots) >= 15
    finally:
        cluster.close()
