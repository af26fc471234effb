"""Task parsing from both wire forms."""

from __future__ import annotations

import pytest

from dqueue.client.task import Task, TaskStatus, format_time_ms, parse_time_ms

PLAIN = {"id": "t1", "type": "email", "payload": {"a": 1}, "priority": 3, "max_retries": 2,
         "attempts": 1, "status": "leased", "idempotency_key": "k", "created_at_ms": 1000,
         "updated_at_ms": 2000, "visible_at_ms": 1500,
         "lease": {"worker_id": "w", "token": "9.0", "expires_at_ms": 32000},
         "last_error": None}


def test_time_round_trip():
    assert parse_time_ms("2026-11-27T19:48:00.123Z") == 1795808880123
    assert format_time_ms(1795808880123) == "2026-11-27T19:48:00.123Z"
    assert parse_time_ms(format_time_ms(5)) == 5


def test_plain_and_http_forms_give_the_same_task():
    plain = Task.from_wire(PLAIN)
    http = Task.from_wire(plain.to_json())
    assert plain == http
    assert plain.status is TaskStatus.LEASED and plain.lease_token == "9.0"
    assert plain.lease is not None and plain.lease.expires_at_ms == 32000


def test_unleased_task_has_no_token():
    task = Task.from_wire({**PLAIN, "lease": None, "status": "pending", "duplicate": True})
    assert task.lease_token is None and task.duplicate


@pytest.mark.parametrize("bad", [None, [], {"type": "x"}, {**PLAIN, "status": "lost"},
                                 {**PLAIN, "created_at": "yesterday", "created_at_ms": None}])
def test_garbage_is_a_value_error(bad):
    with pytest.raises(ValueError):
        Task.from_wire(bad)
