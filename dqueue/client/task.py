"""The task as the SDK hands it to callers, read from either wire form.

The HTTP API renders times as RFC 3339 strings (``created_at``); the ZeroMQ worker protocol
passes the plain form of the queue state machine (``created_at_ms``). Both become one ``Task``
with integer milliseconds since the Unix epoch.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

# The closed set of statuses is the queue's own (a pure, stdlib-only module).
from dqueue.queue.fields import DEFAULT_QUEUE
from dqueue.queue.task import TaskStatus


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a task until ``expires_at_ms``; ``token`` names this very lease."""

    worker_id: str
    token: str | None
    expires_at_ms: int


@dataclass(frozen=True)
class Task:
    """One task. ``duplicate`` is True when an enqueue matched an earlier idempotency key."""

    id: str
    type: str
    payload: Any = None
    priority: int = 0
    max_retries: int = 0
    attempts: int = 0
    status: TaskStatus = TaskStatus.PENDING
    idempotency_key: str | None = None
    created_at_ms: int = 0
    updated_at_ms: int = 0
    visible_at_ms: int = 0
    lease: Lease | None = None
    last_error: str | None = None
    duplicate: bool = False
    queue: str = DEFAULT_QUEUE
    source_queue: str | None = None
    result: Any = None  # the handler's return value, on a completed task
    last_traceback: str | None = None  # the last lines of the last failure's traceback

    @property
    def lease_token(self) -> str | None:
        """The token of the current lease, or None when the task is not leased."""
        return self.lease.token if self.lease else None

    @classmethod
    def from_wire(cls, obj: Any) -> Task:
        """Build a Task from the HTTP JSON form or the plain ``*_ms`` form.

        Raises:
            ValueError: ``obj`` is not a task in either form.
        """
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise ValueError("not a task object")
        lease_obj = obj.get("lease")
        lease = None
        if isinstance(lease_obj, dict):
            token = lease_obj.get("token")
            lease = Lease(
                worker_id=str(lease_obj.get("worker_id", "")),
                token=None if token is None else str(token),
                expires_at_ms=_time_ms(lease_obj, "expires_at"),
            )
        try:
            status = TaskStatus(obj.get("status", "pending"))
        except ValueError:
            raise ValueError(f"unknown task status {obj.get('status')!r}") from None
        return cls(
            id=obj["id"],
            type=str(obj.get("type", "")),
            payload=obj.get("payload"),
            priority=int(obj.get("priority") or 0),
            max_retries=int(obj.get("max_retries") or 0),
            attempts=int(obj.get("attempts") or 0),
            status=status,
            idempotency_key=obj.get("idempotency_key"),
            created_at_ms=_time_ms(obj, "created_at"),
            updated_at_ms=_time_ms(obj, "updated_at"),
            visible_at_ms=_time_ms(obj, "visible_at"),
            lease=lease,
            last_error=obj.get("last_error"),
            duplicate=bool(obj.get("duplicate", False)),
            queue=str(obj.get("queue") or DEFAULT_QUEUE),
            source_queue=obj.get("source_queue"),
            result=obj.get("result"),
            last_traceback=last_traceback if isinstance(
                last_traceback := obj.get("last_traceback"), str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready form (``*_ms`` integers), as the CLI's ``--json`` prints it."""
        return {
            "id": self.id,
            "type": self.type,
            "payload": self.payload,
            "priority": self.priority,
            "max_retries": self.max_retries,
            "attempts": self.attempts,
            "status": self.status.value,
            "idempotency_key": self.idempotency_key,
            "created_at": format_time_ms(self.created_at_ms),
            "updated_at": format_time_ms(self.updated_at_ms),
            "visible_at": format_time_ms(self.visible_at_ms),
            "lease": None if self.lease is None else {
                "worker_id": self.lease.worker_id,
                "token": self.lease.token,
                "expires_at": format_time_ms(self.lease.expires_at_ms),
            },
            "last_error": self.last_error,
            "duplicate": self.duplicate,
            "queue": self.queue,
            "source_queue": self.source_queue,
            "result": self.result,
            "last_traceback": self.last_traceback,
        }


def delay_ms_of(seconds: float | None) -> int | None:
    """Whole milliseconds of a delay in seconds (None stays None); the server checks bounds."""
    return None if seconds is None else round(seconds * 1000)


def parse_time_ms(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 string such as ``2026-11-27T19:48:00.123Z``.

    Raises:
        ValueError: ``text`` is not an RFC 3339 time.
    """
    moment = _dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return round(moment.timestamp() * 1000)


def format_time_ms(time_ms: int) -> str:
    """RFC 3339 UTC with milliseconds, the HTTP API's rendering of a ``*_ms`` time."""
    moment = _dt.datetime.fromtimestamp(time_ms / 1000, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def _time_ms(obj: dict[str, Any], name: str) -> int:
    """Read time ``name`` from either ``name_ms`` (int) or ``name`` (RFC 3339 string)."""
    value = obj.get(name + "_ms")
    if isinstance(value, int | float):
        return int(value)
    text = obj.get(name)
    if isinstance(text, str) and text:
        return parse_time_ms(text)
    if isinstance(text, int | float):
        return int(text)
    return 0
