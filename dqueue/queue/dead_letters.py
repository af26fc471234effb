"""The dead-letter commands: ``redrive`` (dead tasks back to pending, attempts reset) and
``purge`` (dead tasks deleted now), by id, type or queue.

Their plain forms and field rules; ``commands.command_from_plain`` dispatches on ``PARSERS``,
and ``maintenance.py`` applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dqueue.queue import fields
from dqueue.queue.fields import InvalidCommand, text_of


@dataclass(frozen=True, slots=True, kw_only=True)
class Redrive:
    """Send dead tasks back to pending with attempts reset: one by id, or all (of a type, of
    a queue when ``queue`` is given)."""

    id: str | None = None
    type: str | None = None
    queue: str | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "redrive", ...}``."""
        plain = {"op": "redrive", "now_ms": self.now_ms, "id": self.id, "type": self.type}
        if self.queue is not None:
            plain["queue"] = self.queue
        return plain


@dataclass(frozen=True, slots=True, kw_only=True)
class Purge:
    """Delete dead tasks now: those of ``type``, or all when it is None (of ``queue`` only,
    when given)."""

    type: str | None = None
    queue: str | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "purge", ...}``."""
        plain = {"op": "purge", "now_ms": self.now_ms, "type": self.type}
        if self.queue is not None:
            plain["queue"] = self.queue
        return plain


def _redrive(obj: Mapping[str, Any], now_ms: int) -> Redrive:
    task_id = text_of(obj, "id", fields.TASK_ID, required=False)
    task_type = text_of(obj, "type", fields.TASK_TYPE, required=False)
    if task_id is not None and task_type is not None:
        raise InvalidCommand("type", "give id or type, not both")
    queue = text_of(obj, "queue", fields.QUEUE_NAME, required=False)
    if task_id is not None and queue is not None:
        raise InvalidCommand("queue", "give id or queue, not both")
    return Redrive(id=task_id, type=task_type, queue=queue, now_ms=now_ms)


def _purge(obj: Mapping[str, Any], now_ms: int) -> Purge:
    return Purge(type=text_of(obj, "type", fields.TASK_TYPE, required=False),
                 queue=text_of(obj, "queue", fields.QUEUE_NAME, required=False),
                 now_ms=now_ms)


#: op -> (parser, its fields); ``commands.command_from_plain`` dispatches on these too.
PARSERS = {"redrive": (_redrive, {"id", "type", "queue"}),
           "purge": (_purge, {"type", "queue"})}
