"""FIFO queues: each message group in log order, one task at a time (dqueue/queue/fifo.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue.fields import FIFO_DEDUP_WINDOW_MS
from dqueue.queue.queues import CreateQueue, DeleteQueue, MoveTasks, PurgeQueue, QueueSettings
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


def restored(h: Harness) -> dq.QueueState:
    state = dq.QueueState(CONFIG)
    state.restore(h.state.snapshot())
    return state


def lease_from(state: dq.QueueState, index: int, now_ms: int) -> list[str]:
    outcome = state.apply(dq.Lease(worker_id="w", queues=(FIFO,), max_tasks=10, now_ms=now_ms),
                          index)
    assert outcome is not None and outcome["ok"], outcome
    return [t["id"] for t in outcome["value"]["tasks"]]


def kill_then_redrive_behind_a_lease(h: Harness) -> dict[str, Any]:
    """a1 dies, a2 is leased, a1 is redriven: return a2's lease."""
    h.enqueue(("a1", "a"), ("a2", "a"))
    [a1] = h.lease()
    h.ok(dq.Nack(id="a1", worker_id="w", token=a1["lease"]["token"], dead_letter=True,
                 now_ms=h.now_ms))
    [a2] = h.lease()
    h.ok(dq.Redrive(id="a1", now_ms=h.now_ms))
    return a2


def test_a_redriven_task_waits_while_a_younger_task_of_its_group_is_leased(h):
    # Found in review: the live path put a redriven a1 behind a2, a restore in front of it,
    # and leased it beside the leased a2: members diverged and the group ran two at a time.
    a2 = kill_then_redrive_behind_a_lease(h)
    shadow = restored(h)
    assert shadow.snapshot() == h.state.snapshot()
    assert lease_from(shadow, h.index + 1, h.now_ms) == []  # a2 still holds the group
    assert h.ids() == []
    ack(h, a2)
    assert h.ids() == ["a1"]  # back at its enqueue place: first once the group is free


def test_a_redriven_task_goes_in_front_of_the_younger_tasks_of_its_group(h):
    h.enqueue(("a1", "a"), ("a2", "a"), ("a3", "a"))
    [a1] = h.lease()
    h.ok(dq.Nack(id="a1", worker_id="w", token=a1["lease"]["token"], dead_letter=True,
                 now_ms=h.now_ms))
    assert h.state._queues[FIFO].ready.holds(h.state._tasks["a2"])
    h.ok(dq.Redrive(id="a1", now_ms=h.now_ms))
    record = h.state._queues[FIFO]
    assert [t.id for t in record.groups.groups["a"]] == ["a1", "a2", "a3"]
    assert [t.id for t in record.ready.tasks.values()] == ["a1"]  # a2 left the index
    assert lease_from(restored(h), h.index + 1, h.now_ms) == ["a1"]
    assert h.ids() == ["a1"]


def test_a_retried_task_unblocks_an_older_redriven_one_of_its_group(h):
    a2 = kill_then_redrive_behind_a_lease(h)
    h.ok(dq.Nack(id="a2", worker_id="w", token=a2["lease"]["token"], now_ms=h.now_ms))
    assert h.ids() == ["a1"]  # a2 is pending again: the older a1 goes first


def test_a_lease_that_expires_unblocks_its_group_for_a_waiting_lease():
    # A parked long poll asks has_visible: the expiry of a head whose retries are spent (no
    # dead-letter target) makes the next task of its group leasable at once.
    h = Harness()
    h.ok(CreateQueue(name=FIFO, settings=QueueSettings(max_retries=0)))
    h.enqueue(("a1", "a"), ("a2", "a"))
    assert h.ids() == ["a1"]
    expiry_ms = h.now_ms + CONFIG.lease_ms
    assert not h.state.has_visible(None, expiry_ms - 1, (FIFO,))
    assert h.state.has_visible(None, expiry_ms, (FIFO,))
    h.now_ms = expiry_ms
    assert h.ids() == ["a2"]


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


DLQ = "dlq.fifo"


def expected_ready(state: dq.QueueState, queue: str) -> set[str]:
    """The rule of fifo.py, computed from the tasks alone: per group, the oldest pending or
    leased task, when it is pending and visible and no task of the group is leased."""
    live: dict[str | None, list[Any]] = {}
    for task in state._tasks.values():
        if task.queue == queue and task.status in (TaskStatus.PENDING, TaskStatus.LEASED):
            live.setdefault(task.group, []).append(task)
    ready = set()
    for members in live.values():
        head = min(members, key=lambda t: t.seq)
        if (head.status is TaskStatus.PENDING and head.visible_at_ms <= state.clock_ms
                and not any(t.status is TaskStatus.LEASED for t in members)):
            ready.add(head.id)
    return ready


def check_groups(state: dq.QueueState, queue: str) -> None:
    record = state._queues[queue]
    leased = [t for t in state._tasks.values()
              if t.queue == queue and t.status is TaskStatus.LEASED]
    assert len({t.group for t in leased}) == len(leased)  # one at a time per group
    for group, members in record.groups.groups.items():  # each group in seq order
        assert [t.seq for t in members] == sorted(t.seq for t in members)
        assert all(t.group == group and t.queue == queue for t in members)
    assert {t.id for t in record.ready.tasks.values()} == expected_ready(state, queue)


@pytest.mark.parametrize("seed", range(60))
def test_random_histories_keep_order_and_exclusivity_through_snapshots(seed):
    rng = random.Random(seed)
    h = Harness()
    h.ok(CreateQueue(name=DLQ))
    h.ok(CreateQueue(name=FIFO, settings=QueueSettings(
        max_retries=rng.choice([0, 1, 3]), dead_letter_queue=rng.choice([None, DLQ]))))
    held: dict[str, dict[str, Any]] = {}
    for step in range(150):
        roll = rng.random()
        if roll < 0.3:
            group = rng.choice(["a", "b", "c", None])
            h.enqueue((f"t{step}", group), delay_ms=rng.choice([0, 0, 0, 500]))
        elif roll < 0.5:
            before = {t.id for t in h.state._tasks.values() if t.status is TaskStatus.LEASED}
            for task in h.lease(rng.randint(1, 4)):
                held[task["id"]] = task
                live = [t for t in h.state._tasks.values() if t.queue == FIFO
                        and t.group == task.get("group")
                        and t.status in (TaskStatus.PENDING, TaskStatus.LEASED)]
                # Leased only as the oldest of its group, in a group nobody held.
                assert min(live, key=lambda t: t.seq).id == task["id"]
                assert not {t.id for t in live} & before
        elif roll < 0.65 and held:
            task = held.pop(rng.choice(sorted(held)))
            h.apply(dq.Ack(id=task["id"], worker_id="w", token=task["lease"]["token"],
                           now_ms=h.now_ms))
        elif roll < 0.75 and held:
            task = held.pop(rng.choice(sorted(held)))
            h.apply(dq.Nack(id=task["id"], worker_id="w", token=task["lease"]["token"],
                            dead_letter=rng.random() < 0.4, now_ms=h.now_ms))
        elif roll < 0.8:
            dead = sorted(t.id for t in h.state._tasks.values() if t.status is TaskStatus.DEAD)
            if dead and rng.random() < 0.5:
                h.ok(dq.Redrive(id=rng.choice(dead), now_ms=h.now_ms))
            else:
                h.ok(dq.Redrive(queue=FIFO, now_ms=h.now_ms))
        elif roll < 0.85:  # dead letters in the DLQ go back to their source (SQS redrive)
            h.ok(MoveTasks(source=DLQ, max_tasks=rng.randint(1, 3), now_ms=h.now_ms))
        elif roll < 0.88:
            pending = sorted(t.id for t in h.state._tasks.values()
                             if t.queue == FIFO and t.status is TaskStatus.PENDING)
            if pending:
                h.ok(dq.Cancel(id=rng.choice(pending), now_ms=h.now_ms))
        else:
            h.now_ms += rng.choice([200, 700, 1_500])
            h.ok(dq.Tick(now_ms=h.now_ms))
        state = h.state
        check_groups(state, FIFO)
        check_groups(state, DLQ)
        # Snapshot and restore give the same state, bytes and all, and the same indexes.
        data = state.snapshot()
        shadow = dq.QueueState(CONFIG)
        shadow.restore(data)
        assert shadow.snapshot() == data
        for queue in (FIFO, DLQ):
            live, back = state._queues[queue], shadow._queues[queue]
            assert {g: [t.id for t in m] for g, m in back.groups.groups.items()} \
                == {g: [t.id for t in m] for g, m in live.groups.groups.items()}
            assert {t.id for t in back.ready.tasks.values()} \
                == {t.id for t in live.ready.tasks.values()}
