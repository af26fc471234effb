"""Periodic schedules: their definition, and the commands that put, delete, pause and resume
them (docs/schedules.md).

A schedule is replicated state like a queue: made or replaced by a committed ``put_schedule``,
and kept in snapshots. It fires either on a five-field cron expression in an IANA time zone
(``cron.py``) or every ``every_seconds`` seconds (slots at multiples of the interval since
the Unix epoch). The state machine itself fires due slots while applying, on cluster time
(``schedule_admin.py``), so a slot is enqueued by the entry whose time passes it, once, on
every member alike, whoever leads.

Pure: no clock, no I/O. The handlers are in ``schedule_admin.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dqueue.queue import cron, fields
from dqueue.queue.fields import DEFAULT_QUEUE, InvalidCommand

CATCH_UP = ("skip", "latest")
EVERY_SECONDS = fields.IntRule(1, 31 * 86_400)
MAX_SCHEDULES = 1_000
SPEC_FIELDS = frozenset({"cron", "timezone", "every_seconds", "task", "paused", "catch_up"})
_TASK_KEYS = frozenset({"queue", "type", "payload", "priority", "max_retries"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTask:
    """The task each occurrence enqueues (``max_retries`` None: its queue's)."""

    type: str
    queue: str = DEFAULT_QUEUE
    payload: Any = None
    priority: int = 0
    max_retries: int | None = None

    def to_plain(self) -> dict[str, Any]:
        """Return the plain form ``check_task`` reads."""
        return {"queue": self.queue, "type": self.type, "payload": self.payload,
                "priority": self.priority, "max_retries": self.max_retries}


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSpec:
    """What a schedule's owner chooses: when it fires, what it enqueues, how it catches up.

    Attributes:
        cron: Five-field cron expression, or None when ``every_seconds`` is set.
        timezone: IANA zone of the cron expression's wall times.
        every_seconds: Interval, or None when ``cron`` is set.
        task: The task of each occurrence.
        paused: A paused schedule fires nothing; slots passed while paused are skipped.
        catch_up: After downtime, ``skip`` drops missed slots, ``latest`` runs the latest
            missed one once.
    """

    cron: str | None = None
    timezone: str = "UTC"
    every_seconds: int | None = None
    task: ScheduleTask
    paused: bool = False
    catch_up: str = "skip"

    def to_plain(self) -> dict[str, Any]:
        """Return the plain form ``check_spec`` reads (``timezone`` None without cron)."""
        return {"cron": self.cron, "timezone": None if self.cron is None else self.timezone,
                "every_seconds": self.every_seconds, "task": self.task.to_plain(),
                "paused": self.paused, "catch_up": self.catch_up}

    def parsed_cron(self) -> cron.Cron | None:
        """The parsed cron expression, or None for an interval schedule."""
        return None if self.cron is None else cron.parse(self.cron, self.timezone)


def check_task(obj: Any, prefix: str = "task.") -> ScheduleTask:
    """Build the task of a schedule from a plain dict, checking each field.

    Raises:
        InvalidCommand: naming the first bad field.
    """
    if not isinstance(obj, Mapping):
        raise InvalidCommand(prefix.rstrip("."), "task must be an object with a type")
    for key in obj:
        if key not in _TASK_KEYS:
            raise InvalidCommand(prefix + str(key), "unknown field")
    task_type = obj.get("type")
    if task_type is None:
        raise InvalidCommand(prefix + "type", f"{prefix}type is required")
    payload = obj.get("payload")
    fields.check_payload(payload, prefix + "payload")
    queue = obj.get("queue")
    priority = obj.get("priority")
    max_retries = obj.get("max_retries")
    return ScheduleTask(
        type=fields.TASK_TYPE.check(task_type, prefix + "type"),
        queue=DEFAULT_QUEUE if queue is None else fields.QUEUE_NAME.check(queue,
                                                                          prefix + "queue"),
        payload=payload,
        priority=0 if priority is None else fields.PRIORITY.check(priority,
                                                                  prefix + "priority"),
        max_retries=None if max_retries is None else fields.MAX_RETRIES.check(
            max_retries, prefix + "max_retries"))


def check_spec(obj: Any, prefix: str = "") -> ScheduleSpec:
    """Build a schedule's definition from a plain dict (an API body), checking each field.

    Raises:
        InvalidCommand: naming the first bad field.
    """
    if not isinstance(obj, Mapping):
        raise InvalidCommand(prefix.rstrip(".") or "schedule", "a schedule must be an object")
    for key in obj:
        if key not in SPEC_FIELDS:
            raise InvalidCommand(prefix + str(key), "unknown field; known: "
                                 + ", ".join(sorted(SPEC_FIELDS)))
    expression, every = obj.get("cron"), obj.get("every_seconds")
    if (expression is None) == (every is None):
        raise InvalidCommand(prefix + "cron", "give cron or every_seconds, exactly one")
    zone = obj.get("timezone")
    if zone is None:
        zone = "UTC"
    elif expression is None:
        raise InvalidCommand(prefix + "timezone", "timezone goes with cron only")
    try:
        zone = cron.check_zone(zone)
    except cron.CronError as exc:
        raise InvalidCommand(prefix + "timezone", str(exc)) from None
    if expression is not None:
        try:
            expression = cron.parse(expression, zone).expression
        except cron.CronError as exc:
            raise InvalidCommand(prefix + "cron", f"cron: {exc}") from None
    else:
        every = EVERY_SECONDS.check(every, prefix + "every_seconds")
    paused = obj.get("paused", False)
    if not isinstance(paused, bool):
        raise InvalidCommand(prefix + "paused", "paused must be true or false")
    catch_up = obj.get("catch_up")
    if catch_up is None:
        catch_up = "skip"
    elif catch_up not in CATCH_UP:
        raise InvalidCommand(prefix + "catch_up", "catch_up must be skip or latest")
    return ScheduleSpec(cron=expression, timezone=zone, every_seconds=every,
                        task=check_task(obj.get("task"), prefix + "task."), paused=paused,
                        catch_up=catch_up)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class PutSchedule:
    """Create schedule ``name`` or replace its definition (its last slot is kept, so a slot
    never fires twice)."""

    name: str
    spec: ScheduleSpec
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "put_schedule", ...}``."""
        return {"op": "put_schedule", "now_ms": self.now_ms, "name": self.name,
                "schedule": self.spec.to_plain()}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSchedule:
    """Delete schedule ``name`` (the tasks it enqueued stay)."""

    name: str
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "delete_schedule", ...}``."""
        return {"op": "delete_schedule", "now_ms": self.now_ms, "name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseSchedule:
    """Pause (``paused`` True) or resume schedule ``name``; a resumed schedule skips the slots
    that passed while it was paused."""

    name: str
    paused: bool = True
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "pause_schedule" | "resume_schedule", ...}``."""
        op = "pause_schedule" if self.paused else "resume_schedule"
        return {"op": op, "now_ms": self.now_ms, "name": self.name}


ScheduleCommand = PutSchedule | DeleteSchedule | PauseSchedule


def check_name(value: Any, field: str = "name") -> str:
    """A schedule name follows the queue-name rules.

    Raises:
        InvalidCommand: naming ``field``.
    """
    if value is None:
        raise InvalidCommand(field, f"{field} is required")
    return fields.QUEUE_NAME.check(value, field)


def _put(obj: Mapping[str, Any], now_ms: int) -> PutSchedule:
    return PutSchedule(name=check_name(obj.get("name")),
                       spec=check_spec(obj.get("schedule"), "schedule."), now_ms=now_ms)


def _delete(obj: Mapping[str, Any], now_ms: int) -> DeleteSchedule:
    return DeleteSchedule(name=check_name(obj.get("name")), now_ms=now_ms)


def _pause(obj: Mapping[str, Any], now_ms: int) -> PauseSchedule:
    return PauseSchedule(name=check_name(obj.get("name")), paused=True, now_ms=now_ms)


def _resume(obj: Mapping[str, Any], now_ms: int) -> PauseSchedule:
    return PauseSchedule(name=check_name(obj.get("name")), paused=False, now_ms=now_ms)


#: op -> (parser, its fields); ``commands.command_from_plain`` dispatches on these too.
PARSERS = {
    "put_schedule": (_put, {"name", "schedule"}),
    "delete_schedule": (_delete, {"name"}),
    "pause_schedule": (_pause, {"name"}),
    "resume_schedule": (_resume, {"name"}),
}
