"""Read-only views of the queue (dqueue/queue/reads.py): counts, paged listings, and whether a
lease would find a task, each checked against what the state machine itself does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dqueue.queue as dq
from dqueue.queue import reads
from tests.depth import examples

CONFIG = dq.QueueConfig(lease_ms=10_000, max_retries=2, backoff_base_ms=1_000,
                        backoff_factor=2.0, backoff_cap_ms=8_000, backoff_jitter=0.2,
                        retention_ms=1_000_000)
TYPES = ("a", "b")


class Driver:
    """Applies plain commands at increasing indexes; returns outcome values."""

    def __init__(self) -> None:
        self.state = dq.QueueState(CONFIG)
        self.index = 0
        self.ids = 0

    def run(self, state: dq.QueueState, cmd: dict[str, Any], index: int) -> dict[str, Any]:
        outcome = state.apply(dq.command_from_plain(cmd), index)
        assert outcome is not None
        return outcome

    def ok(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.index += 1
        outcome = self.run(self.state, cmd, self.index)
        assert outcome["ok"], outcome
        return outcome["value"]

    def enqueue(self, now_ms: int, task_type: str = "a", delay_ms: int = 0) -> str:
        self.ids += 1
        task_id = f"t{self.ids:04d}"
        self.ok({"op": "enqueue", "now_ms": now_ms, "tasks": [
            {"id": task_id, "type": task_type, "delay_ms": delay_ms}]})
        return task_id

    def lease_would_get(self, types: list[str] | None, now_ms: int) -> bool:
        """Apply the lease to a copy of the state (from its snapshot): did it get a task?"""
        copy = dq.QueueState(CONFIG)
        copy.restore(self.state.snapshot())
        cmd = {"op": "lease", "worker_id": "probe", "types": types, "now_ms": now_ms}
        return bool(self.run(copy, cmd, self.index + 1)["value"]["tasks"])


def test_stats_count_each_status_overall_and_by_type():
    d = Driver()
    d.enqueue(0, "a")
    d.enqueue(0, "a")
    d.enqueue(0, "b")
    d.ok({"op": "lease", "worker_id": "w", "types": ["b"], "now_ms": 1})
    stats = d.state.stats()
    assert stats["by_status"] == {"pending": 2, "leased": 1, "completed": 0, "dead": 0,
                                  "cancelled": 0}
    assert stats["by_type"]["a"]["pending"] == 2 and stats["by_type"]["b"]["leased"] == 1
    assert list(stats["by_type"]) == ["a", "b"]  # sorted, so equal states print alike
    assert stats["clock_ms"] == 1


def test_pages_cover_a_status_in_enqueue_order_exactly_once():
    d = Driver()
    ids = [d.enqueue(i, TYPES[i % 2]) for i in range(23)]
    for task_type, wanted in ((None, ids), ("b", ids[1::2])):
        seen: list[str] = []
        cursor = None
        while True:
            page = d.state.list_tasks("pending", task_type, 5, cursor)
            seen += [t["id"] for t in page["tasks"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == wanted


@pytest.mark.parametrize(("status", "limit", "cursor", "field"), [
    ("nonsense", 10, None, "status"),
    ("pending", 0, None, "limit"),
    ("pending", 1_001, None, "limit"),
    ("pending", True, None, "limit"),
    ("pending", 10, "x1", "cursor"),
])
def test_a_bad_listing_names_its_field(status, limit, cursor, field):
    with pytest.raises(dq.InvalidCommand) as caught:
        dq.QueueState(CONFIG).list_tasks(status, None, limit, cursor)
    assert caught.value.field == field


def test_dead_tasks_of_one_type_or_all():
    d = Driver()
    for task_type in ("a", "b", "a"):
        task_id = d.enqueue(0, task_type)
        d.ok({"op": "lease", "worker_id": "w", "types": [task_type], "now_ms": 1})
        d.ok({"op": "nack", "id": task_id, "worker_id": "w", "dead_letter": True, "now_ms": 1})
    by_status = d.state._by_status  # the index reads.py is given by the state
    assert sorted(t.id for t in reads.dead_tasks(by_status, "a")) == ["t0001", "t0003"]
    assert len(reads.dead_tasks(by_status, None)) == 3
    assert reads.dead_tasks(by_status, "c") == []


def test_a_delayed_task_is_visible_from_its_time_on():
    d = Driver()
    d.enqueue(1_000, "a", delay_ms=500)
    assert not d.state.has_visible(None, 1_499)
    assert d.state.has_visible(None, 1_500)
    assert not d.state.has_visible(["b"], 1_500)


def test_an_expired_lease_is_visible_once_its_backoff_has_passed():
    d = Driver()
    d.enqueue(0, "a")
    d.ok({"op": "lease", "worker_id": "w", "lease_ms": 1_000, "now_ms": 0})
    assert not d.state.has_visible(None, 999)
    expiry_then_backoff = next(t for t in range(1_000, 20_000, 10)
                               if d.lease_would_get(None, t))
    assert not d.state.has_visible(None, expiry_then_backoff - 10)
    assert d.state.has_visible(None, expiry_then_backoff)


# One step of a random history: (what, task type, a time step in ms, a delay or lease in ms).
STEP = st.tuples(st.sampled_from(["enqueue", "lease", "ack", "nack", "wait"]),
                 st.sampled_from(TYPES), st.integers(0, 3_000), st.integers(0, 4_000))


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(STEP, max_size=25),
       st.sampled_from([None, ["a"], ["b"], ["a", "b"]]), st.integers(0, 30_000))
def test_has_visible_agrees_with_applying_the_lease(steps, types, ahead_ms):
    # reads.has_visible lets the node skip proposing a lease that would find nothing: it must
    # say True exactly when the lease, applied, gets a task.
    d = Driver()
    now = 0
    held: list[dict[str, Any]] = []
    for what, task_type, step_ms, extra_ms in steps:
        now += step_ms
        if what == "enqueue":
            d.enqueue(now, task_type, delay_ms=extra_ms)
        elif what == "lease":
            held += d.ok({"op": "lease", "worker_id": "w", "types": [task_type],
                          "lease_ms": 1 + extra_ms, "now_ms": now})["tasks"]
        elif what in ("ack", "nack") and held:
            task = held.pop(0)
            d.index += 1
            # The lease may have expired meanwhile: a refused ack is part of the history too.
            d.run(d.state, {"op": what, "id": task["id"], "worker_id": "w",
                            "token": task["lease"]["token"], "now_ms": now}, d.index)
    probe_ms = now + ahead_ms
    assert d.state.has_visible(types, probe_ms) == d.lease_would_get(types, probe_ms)
