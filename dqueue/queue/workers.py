"""The workers table: who runs tasks, from their heartbeats, dropped when the heartbeats stop.

A worker (HTTP or ZeroMQ) sends a ``worker_heartbeat`` command every ``heartbeat_ms``: its id,
host, pid, queues, types, concurrency, tasks in flight and start time. The command is replicated
like any other, so every member holds the same table, answers ``GET /workers`` alike, and a new
leader keeps it (docs/worker.md, "Seeing the workers"). The price is one log entry per worker per
interval.

Expiry is on cluster time (``QueueState.clock_ms``, DESIGN section 2: time only from the
commands): a worker whose last heartbeat is ``MISSED_HEARTBEATS`` intervals old when the clock
passes it is dropped, by whichever entry moves the clock there (``QueueState.next_deadline_ms``
includes the earliest expiry, so the leader proposes a ``tick`` when nothing else moves it).
A heartbeat with ``leaving`` drops its worker at once (a graceful stop).

Bounded: at most ``fields.MAX_WORKERS`` workers; each field by its rule in ``fields.py``. The
table is part of snapshots (``snapshot.py``: ``workers``, absent when empty).

Pure: no clock, no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dqueue.queue import fields
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.heaps import NEVER_MS
from dqueue.queue.outcomes import Outcome, fail, ok

if TYPE_CHECKING:
    from dqueue.queue.state import QueueState

TOO_MANY_WORKERS = "invalid_state"  # answered 409 by the HTTP API
INFO_FIELDS = frozenset({"worker_id", "host", "pid", "transport", "queues", "types",
                         "concurrency", "in_flight", "started_at_ms", "heartbeat_ms"})
_REQUIRED = ("worker_id", "host", "pid", "concurrency", "started_at_ms", "heartbeat_ms")
_RECORD_TIMES = ("first_seen_at_ms", "last_heartbeat_at_ms", "expires_at_ms")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """What a worker says of itself in each heartbeat.

    Attributes:
        worker_id: The id its leases are held under.
        host: Its host name.
        pid: Its process id on that host.
        transport: ``http`` or ``zmq``.
        queues: The queues it leases from (empty: not said).
        types: The task types it leases (empty: any).
        concurrency: Its handler threads.
        in_flight: Leased tasks it holds (running or buffered) at the heartbeat.
        started_at_ms: When it started, by its own clock (shown, never compared).
        heartbeat_ms: Its heartbeat interval; it is dropped after ``MISSED_HEARTBEATS`` of them.
    """

    worker_id: str
    host: str
    pid: int
    transport: str = "http"
    queues: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    concurrency: int = 1
    in_flight: int = 0
    started_at_ms: int = 0
    heartbeat_ms: int = 5_000

    def to_plain(self) -> dict[str, Any]:
        """Return the plain form ``check_info`` reads."""
        return {"worker_id": self.worker_id, "host": self.host, "pid": self.pid,
                "transport": self.transport, "queues": list(self.queues),
                "types": list(self.types), "concurrency": self.concurrency,
                "in_flight": self.in_flight, "started_at_ms": self.started_at_ms,
                "heartbeat_ms": self.heartbeat_ms}


def _names(obj: Mapping[str, Any], key: str, rule: fields.TextRule, most: int,
           prefix: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > most:
        raise InvalidCommand(prefix + key, f"{prefix}{key} must be a list of at most {most}")
    for position, item in enumerate(value):
        rule.check(item, f"{prefix}{key}[{position}]")
    return tuple(value)


def check_info(obj: Any, prefix: str = "") -> WorkerInfo:
    """Build a ``WorkerInfo`` from a plain dict (a heartbeat body), checking every field.

    Raises:
        InvalidCommand: naming the first bad field.
    """
    if not isinstance(obj, Mapping):
        raise InvalidCommand(prefix.rstrip(".") or "body", "a heartbeat must be an object")
    for key in _REQUIRED:
        if obj.get(key) is None:
            raise InvalidCommand(prefix + key, f"{prefix}{key} is required")
    transport = obj.get("transport")
    if transport is None:
        transport = "http"
    elif transport not in fields.WORKER_TRANSPORTS:
        raise InvalidCommand(prefix + "transport", f"{prefix}transport must be one of "
                             + ", ".join(fields.WORKER_TRANSPORTS))
    in_flight = obj.get("in_flight")
    return WorkerInfo(
        worker_id=fields.WORKER_ID.check(obj["worker_id"], prefix + "worker_id"),
        host=fields.WORKER_HOST.check(obj["host"], prefix + "host"),
        pid=fields.WORKER_PID.check(obj["pid"], prefix + "pid"),
        transport=transport,
        queues=_names(obj, "queues", fields.QUEUE_NAME, fields.MAX_QUEUES, prefix),
        types=_names(obj, "types", fields.TASK_TYPE, fields.MAX_TYPES, prefix),
        concurrency=fields.WORKER_CONCURRENCY.check(obj["concurrency"], prefix + "concurrency"),
        in_flight=0 if in_flight is None else fields.WORKER_IN_FLIGHT.check(
            in_flight, prefix + "in_flight"),
        started_at_ms=fields.NOW_MS.check(obj["started_at_ms"], prefix + "started_at_ms"),
        heartbeat_ms=fields.HEARTBEAT_MS.check(obj["heartbeat_ms"], prefix + "heartbeat_ms"))


# ---------------------------------------------------------------- the command


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """A worker is alive (``leaving`` False) or stops now (``leaving`` True)."""

    info: WorkerInfo
    leaving: bool = False
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "worker_heartbeat", ...}`` (the info's fields, flat)."""
        return {"op": "worker_heartbeat", "now_ms": self.now_ms, **self.info.to_plain(),
                "leaving": self.leaving}


def _heartbeat(obj: Mapping[str, Any], now_ms: int) -> Heartbeat:
    leaving = obj.get("leaving")
    if leaving is not None and not isinstance(leaving, bool):
        raise InvalidCommand("leaving", "leaving must be true or false")
    info = check_info({key: obj[key] for key in INFO_FIELDS if key in obj})
    return Heartbeat(info=info, leaving=bool(leaving), now_ms=now_ms)


#: op -> (parser, its fields); ``commands.command_from_plain`` dispatches on these too.
PARSERS = {"worker_heartbeat": (_heartbeat, set(INFO_FIELDS | {"leaving"}))}


# ---------------------------------------------------------------- the table


class WorkerRecord:
    """One listed worker. Invariant: ``expires_at_ms`` is ``last_heartbeat_at_ms`` plus
    ``MISSED_HEARTBEATS`` of its heartbeat intervals, all on cluster time."""

    __slots__ = ("expires_at_ms", "first_seen_at_ms", "heartbeats", "info",
                 "last_heartbeat_at_ms")

    def __init__(self, info: WorkerInfo, now_ms: int) -> None:
        self.first_seen_at_ms = now_ms
        self.heartbeats = 0
        self.beat(info, now_ms)

    def beat(self, info: WorkerInfo, now_ms: int) -> None:
        """Take a heartbeat's info at cluster time ``now_ms``."""
        self.info = info
        self.heartbeats += 1
        self.last_heartbeat_at_ms = now_ms
        self.expires_at_ms = now_ms + fields.MISSED_HEARTBEATS * info.heartbeat_ms

    def to_plain(self) -> dict[str, Any]:
        """The worker as reads show it: its info, then the table's times and count."""
        plain = self.info.to_plain()
        plain.update({name: getattr(self, name) for name in _RECORD_TIMES})
        plain["heartbeats"] = self.heartbeats
        return plain


class WorkerBook:
    """Every listed worker, in order of (latest) arrival, and an expiry heap.

    Invariant: every record has one live heap entry ``(expires_at_ms, worker_id)``; entries of
    older heartbeats (an earlier time than the record's) are stale and dropped as they surface,
    so the heap's head, after ``_drop_stale``, is the earliest live expiry (``due_ms``).
    """

    __slots__ = ("_heap", "due_ms", "records")

    def __init__(self) -> None:
        self.records: dict[str, WorkerRecord] = {}
        self._heap: list[tuple[int, str]] = []
        self.due_ms = NEVER_MS

    def _drop_stale(self) -> None:
        heap, records = self._heap, self.records
        while heap:
            expires_at_ms, worker_id = heap[0]
            record = records.get(worker_id)
            if record is not None and record.expires_at_ms == expires_at_ms:
                break
            heapq.heappop(heap)
        self.due_ms = heap[0][0] if heap else NEVER_MS

    def expire(self, clock_ms: int) -> list[str]:
        """Drop every worker whose expiry is at or before ``clock_ms``; return their ids."""
        dropped = []
        heap, records = self._heap, self.records
        while heap and heap[0][0] <= clock_ms:
            expires_at_ms, worker_id = heapq.heappop(heap)
            record = records.get(worker_id)
            if record is not None and record.expires_at_ms == expires_at_ms:
                del records[worker_id]
                dropped.append(worker_id)
        self._drop_stale()
        return dropped

    def beat(self, info: WorkerInfo, leaving: bool, clock_ms: int) -> Outcome:
        """Apply one heartbeat at cluster time ``clock_ms``."""
        records = self.records
        record = records.get(info.worker_id)
        if leaving:
            if record is not None:
                del records[info.worker_id]
                self._drop_stale()
            return ok({"worker": None})
        if record is None:
            if len(records) >= fields.MAX_WORKERS:
                return fail(TOO_MANY_WORKERS, f"worker_id: at most {fields.MAX_WORKERS} "
                                              "workers are listed")
            record = records[info.worker_id] = WorkerRecord(info, clock_ms)
        else:
            record.beat(info, clock_ms)
        heapq.heappush(self._heap, (record.expires_at_ms, info.worker_id))
        self._drop_stale()
        return ok({"worker": record.to_plain()})

    def list_plain(self) -> list[dict[str, Any]]:
        """Every listed worker, sorted by id, as reads show it."""
        return [self.records[worker_id].to_plain() for worker_id in sorted(self.records)]

    def to_snapshot(self) -> list[dict[str, Any]] | None:
        """The table as a snapshot holds it, in arrival order; None when empty."""
        return [record.to_plain() for record in self.records.values()] or None

    def load_snapshot(self, entries: Any) -> None:
        """Load the ``workers`` of a snapshot.

        Raises:
            ValueError: on a malformed entry or a repeated id.
        """
        if type(entries) is not list or len(entries) > fields.MAX_WORKERS:
            raise ValueError("snapshot: workers must be a list of at most "
                             f"{fields.MAX_WORKERS}")
        for entry in entries:
            if type(entry) is not dict or set(entry) != INFO_FIELDS | {*_RECORD_TIMES,
                                                                        "heartbeats"}:
                raise ValueError("snapshot: malformed worker entry")
            try:
                info = check_info({key: entry[key] for key in INFO_FIELDS})
            except InvalidCommand as exc:
                raise ValueError(f"snapshot: bad worker ({exc})") from None
            if info.worker_id in self.records:
                raise ValueError(f"snapshot: worker {info.worker_id} repeats")
            values = [entry[name] for name in (*_RECORD_TIMES, "heartbeats")]
            if not all(type(value) is int and value >= 0 for value in values):
                raise ValueError("snapshot: bad worker times")
            record = WorkerRecord(info, entry["first_seen_at_ms"])
            (record.first_seen_at_ms, record.last_heartbeat_at_ms, record.expires_at_ms,
             record.heartbeats) = values
            self.records[info.worker_id] = record
            self._heap.append((record.expires_at_ms, info.worker_id))
        heapq.heapify(self._heap)
        self._drop_stale()


# ---------------------------------------------------------------- handlers


def heartbeat(state: QueueState, cmd: Heartbeat, index: int) -> Outcome:
    """Apply a heartbeat: list or refresh its worker, or drop it when ``leaving``."""
    return state.workers.beat(cmd.info, cmd.leaving, state.clock_ms)


#: Command type -> handler, for ``QueueState``'s handler table.
HANDLERS = {Heartbeat: heartbeat}
