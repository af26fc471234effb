"""The ``release`` command: a lease holder hands its task back unstarted, at no attempt's cost.

A worker that leased a task and will not run it (it is shutting down, its buffer is full)
releases it: the task is pending and visible at once, and the attempt its lease counted is
taken back, so that ``max_retries`` counts only attempts that ran (or expired: a lease that
runs out, a crash, still counts). Releasing is refused, like ack and nack, to anyone who does
not hold the live lease.

Pure: no clock, no I/O. ``handle`` is registered in ``QueueState``'s handler table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dqueue.queue import fields
from dqueue.queue.fields import text_of
from dqueue.queue.outcomes import Outcome, ok
from dqueue.queue.task import Task, TaskStatus

if TYPE_CHECKING:
    from dqueue.queue.state import QueueState


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """The lease holder gives the task back: pending, visible now, its attempt not counted."""

    id: str
    worker_id: str
    token: str | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "release", ...}``."""
        return {"op": "release", "now_ms": self.now_ms, "id": self.id,
                "worker_id": self.worker_id, "token": self.token}


def _release(obj: Mapping[str, Any], now_ms: int) -> Release:
    token = obj.get("token")
    return Release(id=text_of(obj, "id", fields.TASK_ID),
                   worker_id=text_of(obj, "worker_id", fields.WORKER_ID),
                   token=None if token is None else fields.LEASE_TOKEN.check(token, "token"),
                   now_ms=now_ms)


#: op -> (parser, its fields); ``commands.command_from_plain`` dispatches on these too.
PARSERS = {"release": (_release, {"id", "worker_id", "token"})}


def handle(state: QueueState, cmd: Release, index: int) -> Outcome:
    """Apply a release: the holder's task becomes pending now with one attempt fewer."""
    held = state._holder(cmd.id, cmd.worker_id, cmd.token)
    if not isinstance(held, Task):
        return held
    held.lease_worker = held.lease_token = held.lease_expires_at_ms = None
    held.attempts = max(0, held.attempts - 1)
    held.updated_at_ms = held.visible_at_ms = state.clock_ms
    state._set_status(held, TaskStatus.PENDING)
    state._make_pending(held)
    return ok({"task": held.to_plain()})


HANDLERS = {Release: handle}
