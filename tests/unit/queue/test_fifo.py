"""FIFO queues: each message group in log order, one task at a time (dqueue/queue/fifo.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue.fields import FIFO_DEDUP_WINDOW_MS
from dqueue.queue.queues import CreateQueue, DeleteQueue, PurgeQueue, QueueSettings
from dqueue.queue.task import TaskStatus

CONFIG = dq.QueueConfig(lease_ms=1_000, backoff_base_ms=0, backoff_jitter=0.0)
FIFO = "orders.fifo"


class Harness:
    """A state fed through the plain forms, as the log feeds it, with a shadow that is
    restored from a snapshot at every step: both must agree."""

    def __init__(self) -> None:
        self.state = dq.QueueState(CONFIG)
        self.index = 0
        self.now_ms = 1_000

    def apply(self, command: Any) -> dict[str, Any]:
        self.index += 1
        outcome = self.state.apply(dq.command_from_plain(command.to_plain()), self.index)
        assert outcome is not None
        return outcome

    def ok(self, command: Any) -> dict[str, Any]:
        outcome = self.apply(command)
        assert outcome["ok"], outcome
        return outcome["value"]

    def enqueue(self, *specs: tuple[str, str | None], queue: str = FIFO, **extra: Any) -> None:
        self.ok(dq.Enqueue(tasks=tuple(dq.NewTask(id=i, type="t", queue=queue, group=g,
                                                  **extra) for i, g in specs),
                           now_ms=self.now_ms))

    def lease(self, n: int = 10) -> list[dict[str, Any]]:
        return self.ok(dq.Lease(worker_id="w", queues=(FIFO,), max_tasks=n,
                                now_ms=self.now_ms))["tasks"]

    def ids(self, n: int = 10) -> list[str]:
        return [t["id"] for t in self.lease(n)]


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    harness.ok(CreateQueue(name=FIFO, settings=QueueSettings(max_retries=1)))
    return harness


def ack(h: Harness, task: dict[str, Any]) -> None:
    h.ok(dq.Ack(id=task["id"], worker_id="w", token=task["lease"]["token"], now_ms=h.now_ms))


def test_each_group_in_order_and_one_at_a_time(h):
    h.enqueue(("a1", "a"), ("a2", "a"), ("b1", "b"), ("a3", "a"), ("b2", "b"))
    first = h.lease()
    assert [t["id"] for t in first] == ["a1", "b1"]  # the heads only
    assert h.lease() == []  # both groups are blocked while their heads are leased
    ack(h, first[0])
    second = h.lease()
    assert [t["id"] for t in second] == ["a2"]
    ack(h, first[1])
    ack(h, second[0])
    assert h.ids() == ["a3", "b2"]
    assert h.state.get_task("a1")["group"] == "a"


def test_a_failed_head_is_retried_before_the_rest_of_its_group(h):
    h.enqueue(("a1", "a"), ("a2", "a"))
    [head] = h.lease()
    h.ok(dq.Nack(id="a1", worker_id="w", token=head["lease"]["token"], now_ms=h.now_ms))
    assert h.ids() == ["a1"]  # retried (no backoff configured), a2 still waits
    h.now_ms += CONFIG.lease_ms  # the retry's lease expires: max_retries 1 is spent, dead
    assert h.ids() == ["a2"]
    assert h.state.get_task("a1")["status"] == "dead"


def test_the_next_task_is_leased_once_a_dead_head_moves_to_its_dead_letter_queue():
    h = Harness()
    h.ok(CreateQueue(name="dlq.fifo"))
    h.ok(CreateQueue(name=FIFO, settings=QueueSettings(max_retries=0,
                                                       dead_letter_queue="dlq.fifo")))
    h.enqueue(("a1", "a"), ("a2", "a"))
    [head] = h.lease()
    h.ok(dq.Nack(id="a1", worker_id="w", token=head["lease"]["token"], now_ms=h.now_ms))
    moved = h.state.get_task("a1")
    assert (moved["queue"], moved["group"], moved["status"]) == ("dlq.fifo", "a", "pending")
    assert h.ids() == ["a2"]
    got = h.ok(dq.Lease(worker_id="w", queues=("dlq.fifo",), now_ms=h.now_ms))["tasks"]
    assert [t["id"] for t in got] == ["a1"]


def test_cancel_purge_and_delete_keep_the_groups_right(h):
    h.enqueue(("a1", "a"), ("a2", "a"), ("a3", "a"))
    h.ok(dq.Cancel(id="a2", now_ms=h.now_ms))  # behind the head
    h.ok(dq.Cancel(id="a1", now_ms=h.now_ms))  # the head: a3 is next
    assert h.ids() == ["a3"]
    h.enqueue(("a4", "a"))
    assert h.ok(PurgeQueue(name=FIFO, now_ms=h.now_ms))["count"] == 2
    assert h.state._queues[FIFO].groups.groups == {}
    h.enqueue(("a5", "a"))
    assert h.ids() == ["a5"]
    h.ok(DeleteQueue(name=FIFO, now_ms=h.now_ms))
    assert FIFO not in h.state._queues


def test_redrive_puts_dead_tasks_back_in_their_group_in_log_order(h):
    h.enqueue(("a1", "a"), ("a2", "a"))
    for _ in range(2):
        [head] = h.lease()
        h.ok(dq.Nack(id=head["id"], worker_id="w", token=head["lease"]["token"],
                     dead_letter=True, now_ms=h.now_ms))
    assert h.ok(dq.Redrive(queue=FIFO, now_ms=h.now_ms))["count"] == 2
    assert h.ids() == ["a1"]


def test_deduplication_lasts_five_minutes_in_a_fifo_queue(h):
    h.enqueue(("a1", "a"), idempotency_key="dedup-1")
    assert h.apply(dq.Enqueue(tasks=(dq.NewTask(id="a2", type="t", queue=FIFO, group="a",
                                                idempotency_key="dedup-1"),),
                              now_ms=h.now_ms))["value"]["duplicates"] == [True]
    h.now_ms += FIFO_DEDUP_WINDOW_MS
    h.enqueue(("a3", "a"), idempotency_key="dedup-1")  # the window has passed
    assert h.state.get_task("a3") is not None


def test_a_group_outside_a_fifo_queue_is_refused(h):
    outcome = h.apply(dq.Enqueue(tasks=(dq.NewTask(id="x", type="t", group="a"),)))
    assert not outcome["ok"] and outcome["message"].startswith("tasks[0].group:")


@pytest.mark.parametrize("seed", range(40))
def test_random_histories_keep_order_and_exclusivity_through_snapshots(seed):
    rng = random.Random(seed)
    h = Harness()
    h.ok(CreateQueue(name=FIFO, settings=QueueSettings(max_retries=rng.choice([0, 1, 3]))))
    held: dict[str, dict[str, Any]] = {}
    order: dict[str | None, list[str]] = {}  # enqueue order of each group
    served: dict[str | None, list[str]] = {}  # the order in which groups' tasks completed
    for step in range(120):
        roll = rng.random()
        if roll < 0.35:
            group = rng.choice(["a", "b", "c", None])
            task_id = f"t{step}"
            h.enqueue((task_id, group), delay_ms=rng.choice([0, 0, 0, 500]))
            order.setdefault(group, []).append(task_id)
        elif roll < 0.6:
            for task in h.lease(rng.randint(1, 4)):
                held[task["id"]] = task
        elif roll < 0.8 and held:
            task = held.pop(rng.choice(sorted(held)))
            outcome = h.apply(dq.Ack(id=task["id"], worker_id="w", token=task["lease"]["token"],
                                     now_ms=h.now_ms))
            if outcome["ok"]:
                served.setdefault(task.get("group"), []).append(task["id"])
        elif roll < 0.9 and held:
            task = held.pop(rng.choice(sorted(held)))
            h.apply(dq.Nack(id=task["id"], worker_id="w", token=task["lease"]["token"],
                            now_ms=h.now_ms))
        else:
            h.now_ms += rng.choice([200, 700, 1_500])
            h.ok(dq.Tick(now_ms=h.now_ms))
        state = h.state
        record = state._queues[FIFO]
        # At most one leased task per group, and it heads its group.
        leased = [t for t in state._tasks.values() if t.status is TaskStatus.LEASED]
        assert len({t.group for t in leased}) == len(leased)
        assert all(record.groups.is_head(t) for t in leased)
        # The ready index holds only heads.
        assert all(record.groups.is_head(t) for t in record.ready.tasks.values())
        # Every pending or leased task is in its group, in enqueue order.
        for group, members in record.groups.groups.items():
            ids = [t.id for t in members]
            assert ids == [i for i in order[group] if i in ids]
        # Snapshot and restore give the same state, bytes and all.
        data = state.snapshot()
        restored = dq.QueueState(CONFIG)
        restored.restore(data)
        assert restored.snapshot() == data
        assert {g: [t.id for t in m] for g, m in restored._queues[FIFO].groups.groups.items()} \
            == {g: [t.id for t in m] for g, m in record.groups.groups.items()}
        assert set(map(id, restored._queues[FIFO].ready.tasks.values())) == set(
            id(restored._tasks[t.id]) for t in record.ready.tasks.values())
    # Within each group, tasks completed in enqueue order.
    for group, ids in served.items():
        assert ids == [i for i in order[group] if i in ids]
