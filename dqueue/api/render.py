"""Rendering of queue values for HTTP: ``*_ms`` times become RFC 3339 strings.

A task in plain form (docs/internals.md section 2) has ``created_at_ms`` etc.; the API shows
``created_at`` as ``2026-11-27T19:48:00.123Z``. Every other member is passed through.
"""

from __future__ import annotations

import functools
from typing import Any

from dqueue.logs import rfc3339_ms

# Tasks of one command share their times: rendering each distinct millisecond once saves most
# of the cost of a batch.
_render_ms = functools.lru_cache(maxsize=4096)(rfc3339_ms)


def render_times(plain: dict[str, Any]) -> dict[str, Any]:
    """Copy ``plain`` with every ``<name>_ms`` time renamed ``<name>`` and rendered."""
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if key[-6:] == "_at_ms":
            out[key[:-3]] = _render_ms(value) if type(value) is int else None
        else:
            out[key] = value
    return out


# The members of a task's plain form (dqueue.queue.task.Task.to_plain): a task with exactly
# these is rendered by one dict display instead of a loop over its members.
_TASK_KEYS = frozenset({
    "id", "type", "payload", "priority", "max_retries", "attempts", "status", "idempotency_key",
    "created_at_ms", "updated_at_ms", "visible_at_ms", "lease", "last_error", "queue",
    "source_queue",
})


def _time(value: Any) -> str | None:
    return _render_ms(value) if type(value) is int else None


def _public_lease(lease: dict[str, Any]) -> dict[str, Any]:
    """A lease without what lets its holder's calls be made: only when it expires."""
    expires = lease.get("expires_at_ms")
    return {"expires_at": _render_ms(expires) if type(expires) is int else None}


def render_task(task: dict[str, Any], show_lease: bool) -> dict[str, Any]:
    """A task as the API returns it (docs/http-api.md).

    Args:
        task: the task's plain form.
        show_lease: show the lease's ``token`` and ``worker_id`` (callers holding the
            ``consume`` role: ``dqueue.api.auth.may_see_leases``); otherwise the lease shows
            only ``expires_at``, since the token and holder are what an ack needs.
    """
    if task.keys() == _TASK_KEYS:
        lease = task["lease"]
        if isinstance(lease, dict):
            lease = render_times(lease) if show_lease else _public_lease(lease)
        return {
            "id": task["id"], "type": task["type"], "payload": task["payload"],
            "priority": task["priority"], "max_retries": task["max_retries"],
            "attempts": task["attempts"], "status": task["status"],
            "idempotency_key": task["idempotency_key"],
            "created_at": _time(task["created_at_ms"]),
            "updated_at": _time(task["updated_at_ms"]),
            "visible_at": _time(task["visible_at_ms"]),
            "lease": lease,
            "last_error": task["last_error"],
            "queue": task["queue"],
            "source_queue": task["source_queue"],
        }
    out = render_times(task)
    out.pop("seq", None)  # a FIFO task's log-order number: SQS's SequenceNumber, not shown here
    lease = out.get("lease")
    if isinstance(lease, dict):
        out["lease"] = render_times(lease) if show_lease else _public_lease(lease)
    return out
