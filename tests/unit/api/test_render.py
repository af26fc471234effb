"""Rendering of *_ms times as RFC 3339 strings."""

from __future__ import annotations

from dqueue.api.render import render_task, render_times


def test_task_times_and_lease_are_rendered():
    task = {
        "id": "t", "created_at_ms": 0, "updated_at_ms": 1_764_272_880_123,
        "visible_at_ms": None, "lease": {"worker_id": "w", "token": "5.0",
                                         "expires_at_ms": 1_764_272_910_007},
        "attempts": 1,
    }
    out = render_task(task, show_lease=True)
    assert out == {
        "id": "t", "created_at": "1970-01-01T00:00:00.000Z",
        "updated_at": "2025-11-27T19:48:00.123Z", "visible_at": None,
        "lease": {"worker_id": "w", "token": "5.0", "expires_at": "2025-11-27T19:48:30.007Z"},
        "attempts": 1,
    }
    assert task["lease"]["expires_at_ms"] == 1_764_272_910_007  # the input is not modified


def test_task_without_lease():
    for show in (True, False):
        assert render_task({"id": "t", "lease": None}, show) == {"id": "t", "lease": None}


def test_a_task_in_plain_form_renders_like_the_generic_path():
    lease = {"worker_id": "w", "token": "5.0", "expires_at_ms": 1_764_272_910_007}
    for lease_value in (None, lease):
        task = {
            "id": "t", "type": "email", "payload": {"to": "a"}, "priority": 0, "max_retries": 3,
            "attempts": 1, "status": "leased", "idempotency_key": None,
            "created_at_ms": 0, "updated_at_ms": 1_764_272_880_123, "visible_at_ms": None,
            "lease": lease_value, "last_error": None,
        }
        generic = render_times(task)
        if lease_value is not None:
            generic["lease"] = render_times(lease_value)
        assert render_task(task, True) == generic
        assert list(render_task(task, True)) == list(generic)  # same member order
        hidden = render_task(task, False)
        assert hidden == {**generic, "lease": None if lease_value is None
                          else {"expires_at": "2025-11-27T19:48:30.007Z"}}


def test_lease_token_and_holder_hidden_without_consume():
    lease = {"worker_id": "w", "token": "5.0", "expires_at_ms": 1_764_272_910_007}
    for task in ({"id": "t", "lease": lease},  # the generic path
                 {"id": "t", "type": "x", "payload": None, "priority": 0, "max_retries": 3,
                  "attempts": 1, "status": "leased", "idempotency_key": None,
                  "created_at_ms": 0, "updated_at_ms": 0, "visible_at_ms": 0, "lease": lease,
                  "last_error": None}):  # the plain-form fast path
        shown = render_task(task, show_lease=False)["lease"]
        assert shown == {"expires_at": "2025-11-27T19:48:30.007Z"}
        assert "token" not in str(shown) and "w" not in shown.values()
        assert render_task(task, show_lease=True)["lease"]["token"] == "5.0"
