"""ReadyIndex: best-first pops across types, lazy deletion, bounded stale entries."""

from __future__ import annotations

from dqueue.queue.ready import ReadyIndex
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
