"""``Client.wait``: long polls of ``GET /tasks/{id}?wait=`` until the task is finished, and
``WaitTimeout`` when it is not within the timeout (on a made-up clock: no real waiting)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from dqueue.client import task_wait
from dqueue.client.errors import DQueueError, TaskNotFound, WaitTimeout
from dqueue.client.task_wait import MAX_POLL_S, TaskWait
from dqueue.protocol.errors import ErrorCode


class FakeNode(TaskWait):
    """Answers each long poll with the next status of ``statuses`` (the last one repeats),
    moving the made-up clock on by the wait the poll asked for."""

    def __init__(self, statuses: list[str], clock: list[float]) -> None:
        self.statuses = statuses
        self.clock = clock
        self.calls: list[tuple[str, str, float]] = []

    def _request(self, method: str, path: str, body: Any = None, *,
                 wait_s: float = 0.0) -> tuple[int, Any]:
        self.calls.append((method, path, wait_s))
        self.clock[0] += wait_s
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        task: dict[str, Any] = {"id": "t/1", "type": "mail", "status": status}
        if status == "completed":
            task["result"] = {"rows": 3}
        return 200, task


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000.0]
    monkeypatch.setattr(task_wait, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_a_finished_task_is_returned_with_its_result(clock: list[float]) -> None:
    node = FakeNode(["pending", "leased", "completed"], clock)
    task = node.wait("t/1", timeout=60)
    assert task.status.value == "completed" and task.result == {"rows": 3}
    # Each poll waits as long as it may (one poll at most MAX_POLL_S); the id is quoted.
    assert [path for _, path, _ in node.calls] == [f"/tasks/t%2F1?wait={MAX_POLL_S:.3f}"] * 3
    assert all(method == "GET" and wait_s == MAX_POLL_S for method, _, wait_s in node.calls)


@pytest.mark.parametrize("status", ["dead", "cancelled"])
def test_dead_and_cancelled_tasks_are_finished_too(clock: list[float], status: str) -> None:
    assert FakeNode([status], clock).wait("t/1").status.value == status


def test_an_unfinished_task_raises_wait_timeout_after_the_timeout(clock: list[float]) -> None:
    node = FakeNode(["leased"], clock)
    with pytest.raises(WaitTimeout) as info:
        node.wait("t/1", timeout=50)
    # 20 s, 20 s, then what is left: the timeout is kept, not rounded up to whole polls.
    assert [wait_s for _, _, wait_s in node.calls] == [20.0, 20.0, 10.0]
    assert clock[0] == 1_050.0
    error = info.value
    assert isinstance(error, DQueueError) and isinstance(error, TimeoutError)
    assert error.code == ErrorCode.WAIT_TIMEOUT == "wait_timeout"
    assert error.task_id == "t/1" and error.task is not None
    assert error.task.status.value == "leased"
    assert error.message == "task t/1 did not finish within 50 s (still leased)"


def test_a_zero_timeout_looks_once_without_waiting(clock: list[float]) -> None:
    node = FakeNode(["pending"], clock)
    with pytest.raises(WaitTimeout):
        node.wait("t/1", timeout=0)
    assert node.calls == [("GET", "/tasks/t%2F1", 0.0)]
    assert FakeNode(["completed"], clock).wait("t/1", timeout=0).result == {"rows": 3}


def test_a_missing_task_is_task_not_found(clock: list[float]) -> None:
    class Gone(FakeNode):
        def _request(self, method: str, path: str, body: Any = None, *,
                     wait_s: float = 0.0) -> tuple[int, Any]:
            raise TaskNotFound("no task t/1", code=ErrorCode.NOT_FOUND, status=404)

    with pytest.raises(TaskNotFound):
        Gone(["pending"], clock).wait("t/1")


def test_wait_timeout_without_a_task_seen() -> None:
    error = WaitTimeout("t9", 1.5)
    assert error.message == "task t9 did not finish within 1.5 s" and error.task is None
