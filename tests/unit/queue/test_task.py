"""Task plain form and snapshot rows."""

from __future__ import annotations

import pytest

from dqueue.queue.task import Task, TaskStatus


def test_row_round_trip_keeps_every_field() -> None:
    task = Task("a", "email", {"x": [1]}, 4, 2, "k", 10, 20, 7)
    task.status = TaskStatus.LEASED
    task.attempts = 1
    task.lease_worker, task.lease_token, task.lease_expires_at_ms = "w", "9.0", 99
    task.last_error = "e"
    task.done_worker, task.done_token = "w0", "3.1"
    back = Task.from_row(task.to_row())
    assert back.to_row() == task.to_row()
    assert back.to_plain() == task.to_plain()
    assert back.to_plain()["lease"] == {"worker_id": "w", "token": "9.0", "expires_at_ms": 99}


def test_plain_form_keys() -> None:
    plain = Task("a", "t", None, 0, 3, None, 1, 1, 0).to_plain()
    assert set(plain) == {"id", "type", "payload", "priority", "max_retries", "attempts",
                          "status", "idempotency_key", "created_at_ms", "updated_at_ms",
                          "visible_at_ms", "lease", "last_error", "queue", "source_queue"}
    assert plain["status"] == "pending" and plain["lease"] is None
    assert plain["queue"] == "default" and plain["source_queue"] is None


def test_bad_row() -> None:
    with pytest.raises(ValueError):
        Task.from_row(["too", "short"])
