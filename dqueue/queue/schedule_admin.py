"""The schedules inside the state machine: each schedule's record, the handlers of the
commands of ``schedules.py``, and the firing of due slots on cluster time.

Exactly once (docs/schedules.md): ``QueueState.apply`` calls ``fire_due`` after moving its
clock and before the command's handler, so the entry whose ``now_ms`` first passes a slot
enqueues it, on every member alike. ``last_slot_ms`` (the latest slot fired or skipped) is
replicated and in snapshots: a new leader, or a member restored from a snapshot, continues
after it and never fires a slot twice. The task's id and idempotency key both derive from the
schedule's name and the slot. A slot more than ``MISSED_AFTER_MS`` late when the clock passes
it (the cluster was down, or had no leader) is missed: ``skip`` drops it, ``latest`` runs the
latest missed one once.

Deterministic: time only from ``state.clock_ms``; cron wall times use the zone database of
the member, which must be the same on every member (docs/schedules.md).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from dqueue.queue import commands, cron, enqueue, schedules
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.heaps import NEVER_MS
from dqueue.queue.outcomes import Outcome, fail, ok
from dqueue.queue.queue_admin import QUEUE_NOT_FOUND
from dqueue.queue.schedules import ScheduleSpec

if TYPE_CHECKING:
    from dqueue.queue.state import QueueState

# Outcome codes the HTTP API already maps (404, 409); the message names the schedule.
SCHEDULE_NOT_FOUND = "not_found"
TOO_MANY_SCHEDULES = "invalid_state"
#: A slot this late when the clock passes it is missed (catch-up policy decides).
MISSED_AFTER_MS = 10_000
_COUNTERS = ("created_at_ms", "updated_at_ms", "last_slot_ms", "fired",
             "last_fired_slot_ms", "last_missed_slot_ms")


class ScheduleRecord:
    """One schedule as the state holds it.

    Invariant: ``next_slot_ms`` is the first slot after ``last_slot_ms`` (None when paused or
    when a cron expression has no occurrence left); every slot up to ``last_slot_ms`` was
    fired or skipped, never to be fired again.
    """

    __slots__ = ("created_at_ms", "cron", "fired", "last_error", "last_fired_slot_ms",
                 "last_missed_slot_ms", "last_slot_ms", "last_task_id", "name", "next_slot_ms",
                 "spec", "updated_at_ms")

    def __init__(self, name: str, spec: ScheduleSpec, now_ms: int) -> None:
        self.name = name
        self.created_at_ms = self.updated_at_ms = self.last_slot_ms = now_ms
        self.fired = 0
        self.last_fired_slot_ms: int | None = None
        self.last_missed_slot_ms: int | None = None
        self.last_task_id: str | None = None
        self.last_error: str | None = None
        self.set_spec(spec)

    def set_spec(self, spec: ScheduleSpec) -> None:
        """Take ``spec`` as the definition and recompute the next slot."""
        self.spec = spec
        self.cron = spec.parsed_cron()
        self.refresh()

    def refresh(self) -> None:
        """Recompute ``next_slot_ms`` from ``last_slot_ms``."""
        self.next_slot_ms = None if self.spec.paused else self.slot_after(self.last_slot_ms)

    def slot_after(self, after_ms: int) -> int | None:
        """The first slot strictly after ``after_ms``."""
        if self.cron is not None:
            return self.cron.next_after(after_ms)
        step_ms = self.spec.every_seconds * 1000
        return (after_ms // step_ms + 1) * step_ms

    def latest_slot(self, at_ms: int, after_ms: int) -> int | None:
        """The last slot in ``(after_ms, at_ms]``, or None."""
        if self.cron is not None:
            return self.cron.latest_at_or_before(at_ms, after_ms)
        step_ms = self.spec.every_seconds * 1000
        slot_ms = at_ms // step_ms * step_ms
        return slot_ms if slot_ms > after_ms else None

    def to_plain(self) -> dict[str, Any]:
        """The schedule as reads show it: its definition, times and firing record."""
        plain: dict[str, Any] = {"name": self.name, **self.spec.to_plain()}
        plain.update({name: getattr(self, name) for name in _COUNTERS})
        plain.update(next_slot_ms=self.next_slot_ms, last_task_id=self.last_task_id,
                     last_error=self.last_error)
        return plain

    def to_snapshot(self) -> dict[str, Any]:
        """The replicated fields (``next_slot_ms`` is rebuilt)."""
        plain: dict[str, Any] = {"name": self.name, "spec": self.spec.to_plain()}
        plain.update({name: getattr(self, name) for name in _COUNTERS})
        plain.update(last_task_id=self.last_task_id, last_error=self.last_error)
        return plain


class ScheduleBook:
    """Every schedule, in creation order, and the earliest slot due (``NEVER_MS``: none)."""

    __slots__ = ("due_ms", "records")

    def __init__(self) -> None:
        self.records: dict[str, ScheduleRecord] = {}
        self.due_ms = NEVER_MS

    def refresh_due(self) -> None:
        """Recompute ``due_ms``: O(schedules), after any change."""
        slots = [record.next_slot_ms for record in self.records.values()
                 if record.next_slot_ms is not None]
        self.due_ms = min(slots) if slots else NEVER_MS

    def list_plain(self) -> list[dict[str, Any]]:
        """Every schedule, in creation order, as reads show it."""
        return [record.to_plain() for record in self.records.values()]

    def get_plain(self, name: str) -> dict[str, Any] | None:
        """One schedule as reads show it, or None."""
        record = self.records.get(name)
        return None if record is None else record.to_plain()

    def to_snapshot(self) -> list[dict[str, Any]] | None:
        """The schedules as a snapshot holds them; None when there are none."""
        return [record.to_snapshot() for record in self.records.values()] or None

    def load_snapshot(self, entries: Any) -> None:
        """Load the ``schedules`` of a snapshot.

        Raises:
            ValueError: on a malformed entry or a repeated name.
        """
        if type(entries) is not list:
            raise ValueError("snapshot: schedules must be a list")
        for entry in entries:
            self._load_entry(entry)
        self.refresh_due()

    def _load_entry(self, entry: Any) -> None:
        keys = {"name", "spec", "last_task_id", "last_error", *_COUNTERS}
        if type(entry) is not dict or set(entry) != keys:
            raise ValueError("snapshot: malformed schedule entry")
        try:
            name = schedules.check_name(entry["name"])
            spec = schedules.check_spec(entry["spec"])
        except InvalidCommand as exc:
            raise ValueError(f"snapshot: bad schedule ({exc})") from None
        if name in self.records:
            raise ValueError(f"snapshot: schedule {name} repeats")
        for key in _COUNTERS:
            value = entry[key]
            optional = key.startswith("last_") and key != "last_slot_ms"
            if not ((optional and value is None)
                    or (type(value) is int and value >= 0)):
                raise ValueError(f"snapshot: bad schedule {key}")
        for key in ("last_task_id", "last_error"):
            if entry[key] is not None and type(entry[key]) is not str:
                raise ValueError(f"snapshot: bad schedule {key}")
        record = ScheduleRecord(name, spec, entry["created_at_ms"])
        for key in _COUNTERS:
            setattr(record, key, entry[key])
        record.last_task_id, record.last_error = entry["last_task_id"], entry["last_error"]
        record.refresh()
        self.records[name] = record


# ---------------------------------------------------------------- firing


def task_id_of(name: str, slot_ms: int) -> str:
    """The id of the task a schedule enqueues for a slot (also its idempotency key)."""
    return f"schedule.{name}.{slot_ms}"


def _fire(state: QueueState, record: ScheduleRecord, slot_ms: int) -> None:
    task = record.spec.task
    task_id = task_id_of(record.name, slot_ms)
    new = commands.NewTask(id=task_id, type=task.type, payload=task.payload,
                           priority=task.priority, max_retries=task.max_retries,
                           idempotency_key=task_id, queue=task.queue)
    outcome = enqueue.enqueue(state, commands.Enqueue(tasks=(new,)), state.last_index)
    record.fired += 1
    record.last_fired_slot_ms = slot_ms
    if outcome["ok"]:
        record.last_task_id, record.last_error = task_id, None
    else:
        record.last_error = f"{outcome['code']}: {outcome['message']}"


def fire_due(state: QueueState) -> None:
    """Fire every slot due at ``state.clock_ms`` (``book.due_ms <= clock_ms``), in creation
    order of the schedules and time order of the slots, then skip or catch up missed ones."""
    book: ScheduleBook = state.schedules
    clock_ms = state.clock_ms
    missed_before_ms = clock_ms - MISSED_AFTER_MS
    for record in book.records.values():
        slot_ms = record.next_slot_ms
        if slot_ms is None or slot_ms > clock_ms:
            continue
        if slot_ms < missed_before_ms:
            latest_ms = record.latest_slot(missed_before_ms - 1, record.last_slot_ms)
            assert latest_ms is not None  # slot_ms itself is one
            record.last_missed_slot_ms = latest_ms
            if record.spec.catch_up == "latest":
                _fire(state, record, latest_ms)
            record.last_slot_ms = latest_ms
            slot_ms = record.slot_after(latest_ms)
        while slot_ms is not None and slot_ms <= clock_ms:
            _fire(state, record, slot_ms)
            record.last_slot_ms = slot_ms
            slot_ms = record.slot_after(slot_ms)
        record.next_slot_ms = slot_ms
    book.refresh_due()


# ---------------------------------------------------------------- handlers


def put_schedule(state: QueueState, cmd: schedules.PutSchedule, index: int) -> Outcome:
    """Create or replace a schedule; slots up to now never fire (they were due before it)."""
    book: ScheduleBook = state.schedules
    if cmd.spec.task.queue not in state._queues:
        return fail(QUEUE_NOT_FOUND, f"schedule.task.queue: no queue {cmd.spec.task.queue}")
    try:
        cmd.spec.parsed_cron()
    except cron.CronError as exc:  # a zone this member's database lacks
        return fail("invalid", f"schedule.timezone: {exc}")
    record = book.records.get(cmd.name)
    created = record is None
    if record is None:
        if len(book.records) >= schedules.MAX_SCHEDULES:
            return fail(TOO_MANY_SCHEDULES, f"name: at most {schedules.MAX_SCHEDULES} "
                                            "schedules")
        record = book.records[cmd.name] = ScheduleRecord(cmd.name, cmd.spec, state.clock_ms)
    else:
        record.last_slot_ms = max(record.last_slot_ms, state.clock_ms)
        record.updated_at_ms = state.clock_ms
        record.set_spec(cmd.spec)
    book.refresh_due()
    return ok({"created": created, "schedule": record.to_plain()})


def delete_schedule(state: QueueState, cmd: schedules.DeleteSchedule, index: int) -> Outcome:
    """Delete a schedule; the tasks it enqueued stay."""
    book: ScheduleBook = state.schedules
    if book.records.pop(cmd.name, None) is None:
        return fail(SCHEDULE_NOT_FOUND, f"name: no schedule {cmd.name}")
    book.refresh_due()
    return ok({"deleted": cmd.name})


def pause_schedule(state: QueueState, cmd: schedules.PauseSchedule, index: int) -> Outcome:
    """Pause or resume; a resumed schedule continues after now (paused slots are skipped)."""
    book: ScheduleBook = state.schedules
    record = book.records.get(cmd.name)
    if record is None:
        return fail(SCHEDULE_NOT_FOUND, f"name: no schedule {cmd.name}")
    if record.spec.paused != cmd.paused:
        record.last_slot_ms = max(record.last_slot_ms, state.clock_ms)
        record.updated_at_ms = state.clock_ms
        record.set_spec(dataclasses.replace(record.spec, paused=cmd.paused))
        book.refresh_due()
    return ok({"schedule": record.to_plain()})


def list_schedules(state: QueueState) -> list[dict[str, Any]]:
    """Every schedule, in creation order, as reads show it."""
    return state.schedules.list_plain()


def get_schedule(state: QueueState, name: str) -> dict[str, Any] | None:
    """One schedule as reads show it, or None."""
    return state.schedules.get_plain(name)


#: Command type -> handler, for ``QueueState``'s handler table.
HANDLERS = {schedules.PutSchedule: put_schedule, schedules.DeleteSchedule: delete_schedule,
            schedules.PauseSchedule: pause_schedule}
