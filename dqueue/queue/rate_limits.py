"""Rate limits per task type and per queue, enforced by the state machine at lease time.

A limit ``"N/s"``, ``"N/m"`` or ``"N/h"`` allows N leases per second, minute or hour, counted
over the whole cluster: the state machine grants a lease only while the limits of the task's
type (a replicated table, set by ``put_rate_limit``) and of its queue (the queue setting
``rate_limit``) both have budget, so no worker, and no number of workers, takes more.

Each limited type and queue has a bucket of the generic cell rate algorithm (GCRA, the
"virtual scheduling" form of ITU-T I.371): its theoretical arrival time ``tat``. Time is
cluster time only (``state.clock_ms``, the leader's stamps, never a member's clock: Raft paper
section 5.3, every member applies the same entries in order), and the arithmetic is in integers
scaled by N (a time ``t`` ms is ``t * N``, an emission interval ``P / N`` ms is ``P``), so every
member computes the same grants, and a snapshot holds the exact state. A lease at ``t`` is
allowed when ``t * N >= tat - tolerance``, and moves ``tat`` to ``max(tat, t * N) + P``. The
tolerance is one emission interval, or ``BURST_MS`` when that is longer: it absorbs the delay
between budget returning and the next lease being applied (a parked long poll is looked at
once per Raft tick), so the long-run rate is the limit itself, never more, and a burst after an
idle spell is at most ``1 + tolerance / interval`` tasks (docs/queues.md, "Rate limits").

A bucket remembers the limit it was computed for: a changed limit starts a fresh bucket. Every
bucket is in snapshots, in force or not, so a member that restored one holds exactly the
buckets of a member that replayed the log. Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dqueue.queue import fields
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.outcomes import Outcome, fail, ok

if TYPE_CHECKING:
    from dqueue.queue.queue_admin import QueueRecord
    from dqueue.queue.state import QueueState
    from dqueue.queue.task import Task

#: Period of each unit a limit may name.
UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000}
#: Most leases a limit may allow per unit.
MAX_COUNT = 1_000_000
_PATTERN = re.compile(r"([1-9][0-9]{0,6})/([smh])")
#: Least tolerance of a bucket (see the module docstring): a few Raft ticks of 50 ms.
BURST_MS = 100
#: Most task types with a limit of their own.
MAX_TYPE_LIMITS = 1_000
TYPE, QUEUE = "type", "queue"
#: Greater than every time a bucket computes.
_NEVER_MS = 1 << 62


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``count`` leases per ``period_ms`` (``text`` is its canonical form, ``"100/m"``)."""

    count: int
    period_ms: int
    text: str

    @property
    def tolerance(self) -> int:
        """The GCRA tolerance, in units scaled by ``count``: one emission interval, or
        ``BURST_MS`` when that is longer."""
        return max(self.period_ms, BURST_MS * self.count)


def check_rate_limit(value: Any, field: str) -> RateLimit:
    """The limit ``value`` (``"N/s"``, ``"N/m"`` or ``"N/h"``, N from 1 to ``MAX_COUNT``).

    Raises:
        InvalidCommand: naming ``field``.
    """
    match = _PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match[1]) > MAX_COUNT:
        raise InvalidCommand(field, f"{field} must be N/s, N/m or N/h with N from 1 to "
                                    f"{MAX_COUNT}, for example \"100/m\"")
    return limit_of(value)


@lru_cache(maxsize=1_024)
def limit_of(text: str) -> RateLimit:
    """The limit of a canonical text that ``check_rate_limit`` accepted (cached: a lease reads
    its queue's setting, stored as text)."""
    count, unit = text.split("/")
    return RateLimit(int(count), UNIT_MS[unit], text)


class Bucket:
    """One GCRA cell: ``tat`` (theoretical arrival time, scaled by ``limit.count``).

    Invariant: ``tat`` only grows, by ``limit.period_ms`` per lease granted.
    """

    __slots__ = ("limit", "tat")

    def __init__(self, limit: RateLimit, tat: int = 0) -> None:
        self.limit = limit
        self.tat = tat

    def allows(self, at_ms: int) -> bool:
        """Whether a lease at ``at_ms`` may take one more task."""
        return at_ms * self.limit.count >= self.tat - self.limit.tolerance

    def take(self, at_ms: int) -> None:
        """Count one task leased at ``at_ms`` (the caller checked ``allows``)."""
        self.tat = max(self.tat, at_ms * self.limit.count) + self.limit.period_ms

    def ready_at_ms(self) -> int:
        """The first time ``allows`` holds again."""
        count = self.limit.count
        return -(-(self.tat - self.limit.tolerance) // count)


class RateLimitBook:
    """The type limits and every bucket.

    Invariants: ``types`` maps each type with a limit to it (sorted when written); a bucket of
    ``buckets[(kind, name)]`` counts only while its ``limit`` is the one in force for that
    type or queue (else the next lease starts a fresh one).
    """

    __slots__ = ("buckets", "types")

    def __init__(self) -> None:
        self.types: dict[str, RateLimit] = {}
        self.buckets: dict[tuple[str, str], Bucket] = {}

    def _out(self, kind: str, name: str, limit: RateLimit, at_ms: int) -> bool:
        bucket = self.buckets.get((kind, name))
        return bucket is not None and bucket.limit == limit and not bucket.allows(at_ms)

    def queue_out(self, record: QueueRecord, at_ms: int) -> bool:
        """Whether ``record``'s own limit has no budget at ``at_ms``."""
        text = record.settings.rate_limit
        return text is not None and self._out(QUEUE, record.name, limit_of(text), at_ms)

    def blocked_types(self, at_ms: int) -> frozenset[str]:
        """The types whose limit has no budget at ``at_ms``: O(limited types)."""
        return frozenset(name for name, limit in self.types.items()
                         if self._out(TYPE, name, limit, at_ms))

    def _take(self, kind: str, name: str, limit: RateLimit, at_ms: int) -> bool:
        bucket = self.buckets.get((kind, name))
        if bucket is None or bucket.limit != limit:
            bucket = self.buckets[(kind, name)] = Bucket(limit)
        bucket.take(at_ms)
        return not bucket.allows(at_ms)

    def charge(self, task: Task, record: QueueRecord, at_ms: int) -> bool:
        """Count ``task``, just leased at ``at_ms``, against its type's and its queue's limits;
        True when one of them has no budget left (the lease then looks again)."""
        spent = False
        limit = self.types.get(task.type)
        if limit is not None:
            spent = self._take(TYPE, task.type, limit, at_ms)
        text = record.settings.rate_limit
        if text is not None:
            spent = self._take(QUEUE, record.name, limit_of(text), at_ms) or spent
        return spent

    def next_budget_ms(self, records: Mapping[str, QueueRecord], at_ms: int) -> int | None:
        """The first time after ``at_ms`` a limit without budget has some again, or None."""
        best = _NEVER_MS
        for (kind, name), bucket in self.buckets.items():
            if kind == TYPE:
                live = self.types.get(name) == bucket.limit
            else:
                record = records.get(name)
                live = (record is not None and record.settings.rate_limit is not None
                        and limit_of(record.settings.rate_limit) == bucket.limit)
            if live and not bucket.allows(at_ms):
                best = min(best, bucket.ready_at_ms())
        return None if best == _NEVER_MS else best

    # ---------------------------------------------------------------- snapshots

    def to_snapshot(self) -> dict[str, Any] | None:
        """``{"types": [[type, limit], ...], "buckets": [[kind, name, limit, tat], ...]}``,
        both sorted; None when both are empty (a snapshot then has no ``rate_limits``)."""
        buckets = [[kind, name, bucket.limit.text, bucket.tat]
                   for (kind, name), bucket in sorted(self.buckets.items())]
        types = [[name, limit.text] for name, limit in sorted(self.types.items())]
        if not types and not buckets:
            return None
        return {"types": types, "buckets": buckets}

    def load_snapshot(self, obj: Any) -> None:
        """Load what ``to_snapshot`` wrote.

        Raises:
            ValueError: on any malformed entry.
        """
        if type(obj) is not dict or set(obj) != {"types", "buckets"}:
            raise ValueError("snapshot: malformed rate_limits")
        try:
            for entry in _rows(obj["types"], 2):
                name = fields.TASK_TYPE.check(entry[0], "type")
                self.types[name] = check_rate_limit(entry[1], "rate_limit")
            for entry in _rows(obj["buckets"], 4):
                if entry[0] not in (TYPE, QUEUE) or type(entry[1]) is not str \
                        or type(entry[3]) is not int or entry[3] < 0:
                    raise ValueError("snapshot: malformed rate limit bucket")
                limit = check_rate_limit(entry[2], "rate_limit")
                self.buckets[(entry[0], entry[1])] = Bucket(limit, entry[3])
        except InvalidCommand as exc:
            raise ValueError(f"snapshot: bad rate limit ({exc})") from None

    def list_plain(self) -> list[dict[str, Any]]:
        """Every type limit, by type."""
        return [{"type": name, "rate_limit": limit.text}
                for name, limit in sorted(self.types.items())]


def _rows(rows: Any, width: int) -> list[list[Any]]:
    if type(rows) is not list or any(type(row) is not list or len(row) != width
                                     for row in rows):
        raise ValueError("snapshot: malformed rate_limits")
    return rows


# ---------------------------------------------------------------- leasing


def lease_sources(state: QueueState, names: Iterable[str],
                  types: tuple[str, ...] | None) -> list[tuple[QueueRecord, list[list[int]]]] | str:
    """The ready heaps a lease of ``types`` in the queues ``names`` takes from now, each with
    its queue, leaving out queues and types whose limit has no budget at ``state.clock_ms``;
    or the first name that is no queue.

    Without limits in play this is each queue's ``heaps_for(types)``; with them, the heaps of
    the types still in budget, so a lease skips a spent type's tasks for others' (a heap per
    type: ready.py).
    """
    book: RateLimitBook = state.rate_limits
    at_ms = state.clock_ms
    blocked = book.blocked_types(at_ms) if book.types else frozenset()
    sources: list[tuple[QueueRecord, list[list[int]]]] = []
    for name in names:
        record = state._queues.get(name)
        if record is None:
            return name
        if record.settings.rate_limit is not None and book.queue_out(record, at_ms):
            continue
        wanted = types
        if blocked:
            present = record.ready.count if types is None else types
            wanted = tuple(t for t in present if t not in blocked)
        heaps = record.ready.heaps_for(wanted)
        if heaps:
            sources.append((record, heaps))
    return sources


def limits_apply(state: QueueState, sources: list[tuple[QueueRecord, list[list[int]]]]) -> bool:
    """Whether a lease from ``sources`` must count its tasks (a type or one of its queues has
    a limit); False keeps the unlimited lease on its fast path."""
    return bool(state.rate_limits.types) or any(
        record.settings.rate_limit is not None for record, _ in sources)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class PutRateLimit:
    """Set the limit of task type ``type`` (over every queue); an equal limit keeps its
    bucket, another starts a fresh one."""

    type: str
    rate_limit: RateLimit
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "put_rate_limit", ...}``."""
        return {"op": "put_rate_limit", "now_ms": self.now_ms, "type": self.type,
                "rate_limit": self.rate_limit.text}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteRateLimit:
    """Remove the limit of task type ``type``."""

    type: str
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "delete_rate_limit", ...}``."""
        return {"op": "delete_rate_limit", "now_ms": self.now_ms, "type": self.type}


def _type(obj: Mapping[str, Any]) -> str:
    value = obj.get("type")
    if value is None:
        raise InvalidCommand("type", "type is required")
    return fields.TASK_TYPE.check(value, "type")


def _put(obj: Mapping[str, Any], now_ms: int) -> PutRateLimit:
    value = obj.get("rate_limit")
    if value is None:
        raise InvalidCommand("rate_limit", "rate_limit is required")
    return PutRateLimit(type=_type(obj), rate_limit=check_rate_limit(value, "rate_limit"),
                        now_ms=now_ms)


def _delete(obj: Mapping[str, Any], now_ms: int) -> DeleteRateLimit:
    return DeleteRateLimit(type=_type(obj), now_ms=now_ms)


#: op -> (parser, its fields); ``commands.command_from_plain`` dispatches on these too.
PARSERS = {"put_rate_limit": (_put, {"type", "rate_limit"}),
           "delete_rate_limit": (_delete, {"type"})}


def put_rate_limit(state: QueueState, cmd: PutRateLimit, index: int) -> Outcome:
    """Apply ``put_rate_limit``: ``created`` says whether the type had no limit."""
    book: RateLimitBook = state.rate_limits
    created = cmd.type not in book.types
    if created and len(book.types) >= MAX_TYPE_LIMITS:
        return fail("invalid_state", f"type: at most {MAX_TYPE_LIMITS} type limits")
    book.types[cmd.type] = cmd.rate_limit
    return ok({"created": created, "type": cmd.type, "rate_limit": cmd.rate_limit.text})


def delete_rate_limit(state: QueueState, cmd: DeleteRateLimit, index: int) -> Outcome:
    """Apply ``delete_rate_limit``; its bucket goes with it."""
    book: RateLimitBook = state.rate_limits
    if book.types.pop(cmd.type, None) is None:
        return fail("not_found", f"type: no rate limit for type {cmd.type}")
    book.buckets.pop((TYPE, cmd.type), None)
    return ok({"deleted": cmd.type})


HANDLERS = {PutRateLimit: put_rate_limit, DeleteRateLimit: delete_rate_limit}
