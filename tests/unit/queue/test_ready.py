"""ReadyIndex: best-first pops across types, lazy deletion, bounded stale entries."""

from __future__ import annotations

from dqueue.queue.ready import ReadyIndex, ready_key
from dqueue.queue.task import Task, TaskStatus


def make(seq: int, task_type: str, priority: int) -> Task:
    task = Task(f"t{seq}", task_type, None, priority, 3, None, 0, 0, seq)
    task.epoch = 1
    return task


def take(index: ReadyIndex, types: tuple[str, ...] | None) -> Task | None:
    task = index.pop(index.heaps_for(types))
    if task is not None:
        task.status = TaskStatus.LEASED
    return task


def test_pops_best_first_within_the_wanted_types() -> None:
    index = ReadyIndex()
    tasks = [make(0, "a", 0), make(1, "b", 5), make(2, "c", 9), make(3, "a", 5)]
    for task in tasks:
        index.push(task)
    assert [take(index, ("a", "b")).id for _ in range(3)] == ["t1", "t3", "t0"]
    assert take(index, ("a", "b")) is None
    assert index.has_any(None) and index.has_any(["c"]) and not index.has_any(["a"])
    assert take(index, None).id == "t2" and index.total == 0


def test_stale_entries_are_skipped_and_bounded() -> None:
    index = ReadyIndex()
    for seq in range(1_000):
        index.push(make(seq, "ab"[seq % 2], 0))
        take(index, ("ab"[seq % 2],))  # leaves a stale entry in the all-types heap
    assert index.total == 0 and len(index.all) <= 64 + 1
    assert take(index, None) is None


def test_load_matches_pushes() -> None:
    pushed, loaded = ReadyIndex(), ReadyIndex()
    for seq in range(20):
        pushed.push(make(seq, "ab"[seq % 2], seq % 3))
    loaded.load([make(seq, "ab"[seq % 2], seq % 3) for seq in range(20)])
    assert [take(pushed, None).id for _ in range(10)] == [take(loaded, None).id
                                                          for _ in range(10)]


def test_a_task_that_comes_back_is_taken_once_and_stale_copies_are_dropped() -> None:
    index = ReadyIndex()
    task, other = make(0, "a", 0), make(1, "b", 0)
    index.push(task)
    index.push(other)
    assert take(index, ("a",)) is task  # its key stays behind in the all-types heap
    task.status = TaskStatus.PENDING
    index.push(task)  # back (a nack whose backoff ran out): a second copy of the key
    assert index.all.count(ready_key(task)) == 2
    assert take(index, None) is task and take(index, None) is other
    assert take(index, None) is None and index.total == 0 and not index.by_type


def test_rebuilds_bound_the_heaps_and_keep_the_order() -> None:
    index = ReadyIndex()
    tasks = [make(seq, "a", seq % 2) for seq in range(200)]
    for task in tasks:
        index.push(task)
    # Leases through the type heap leave stale keys in the other.
    gone = [take(index, ("a",)) for _ in range(150)]
    for task in gone:  # all come back, each with a second copy of its key
        task.status = TaskStatus.PENDING
        index.push(task)
    assert len(index.all) <= 2 * index.total + 64  # rebuilt on the way, copies dropped
    taken = [take(index, None) for _ in range(200)]
    assert [t.seq for t in taken] == sorted(range(200), key=lambda s: (-(s % 2), s))


def test_remove_takes_a_task_out_and_keys_order_as_priority_then_seq() -> None:
    index = ReadyIndex()
    low, high, big = make(5, "a", -(1 << 63)), make(9, "a", (1 << 63) - 1), make(1, "a", 0)
    for task in (low, high, big):
        index.push(task)
    index.remove(big)
    assert [take(index, ("a",)) for _ in range(3)] == [high, low, None]
    assert ready_key(high) < ready_key(big) < ready_key(low)
