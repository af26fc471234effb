"""The history of a chaos run: one JSON object per line, in the order events happened.

Every client operation is two events from the same process: an ``invoke`` and then exactly one
completion, ``ok`` (it took effect), ``fail`` (it certainly did not) or ``info`` (unknown: a
timeout, a dropped connection, a 503). A process has at most one operation in flight, so the
completion that follows an invoke on the same process is its answer. The nemesis, the health
observer and the final read write ``info`` or ``ok`` events without an invoke.

Event fields: ``index`` (position), ``time_ms`` (monotonic milliseconds since the run started),
``process``, ``type``, ``f`` (the operation), ``value`` (a JSON object) and ``error`` (a short
reason on ``fail``/``info``, else None).
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any


class EventType(enum.StrEnum):
    """What an event says about an operation."""

    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class Op(enum.StrEnum):
    """The operations and markers a history may hold."""

    ENQUEUE = "enqueue"
    LEASE = "lease"
    ACK = "ack"
    NEMESIS = "nemesis"
    OBSERVE = "observe"
    PHASE = "phase"
    FINAL = "final"
    META = "meta"


WRITE_OPS = frozenset({Op.ENQUEUE, Op.LEASE, Op.ACK})


@dataclass(frozen=True)
class Event:
    """One line of a history."""

    index: int
    time_ms: float
    process: str
    type: EventType
    f: Op
    value: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_plain(self) -> dict[str, Any]:
        """The JSON object written for this event."""
        return {"index": self.index, "time_ms": self.time_ms, "process": self.process,
                "type": self.type.value, "f": self.f.value, "value": self.value,
                "error": self.error}

    @classmethod
    def from_plain(cls, obj: Any) -> Event:
        """Parse one history line; raises ValueError naming the bad field."""
        if not isinstance(obj, dict):
            raise ValueError("event: expected a JSON object")
        try:
            kind = EventType(obj.get("type"))
        except ValueError:
            raise ValueError(f"type: unknown event type {obj.get('type')!r}") from None
        try:
            op = Op(obj.get("f"))
        except ValueError:
            raise ValueError(f"f: unknown operation {obj.get('f')!r}") from None
        index, time_ms = obj.get("index"), obj.get("time_ms")
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError("index: expected an integer")
        if not isinstance(time_ms, int | float) or isinstance(time_ms, bool):
            raise ValueError("time_ms: expected a number")
        process, value, error = obj.get("process"), obj.get("value", {}), obj.get("error")
        if not isinstance(process, str):
            raise ValueError("process: expected a string")
        if not isinstance(value, dict):
            raise ValueError("value: expected a JSON object")
        if error is not None and not isinstance(error, str):
            raise ValueError("error: expected a string or null")
        return cls(index, float(time_ms), process, kind, op, value, error)


def parse_lines(lines: Iterable[str]) -> Iterator[Event]:
    """Parse history lines, skipping blank ones; raises ValueError with the line number."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield Event.from_plain(json.loads(line))
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"line {number}: {exc}") from None


def load(path: str) -> list[Event]:
    """Read a whole history file."""
    with open(path, encoding="utf-8") as handle:
        return list(parse_lines(handle))


class HistoryWriter:
    """Appends events to a JSON-lines file; safe to share between the harness threads.

    Index and timestamp are taken under one lock, so the file order is the time order.
    """

    def __init__(self, out: IO[str], clock_ms: Any = None) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._index = 0
        start = time.monotonic()
        self._clock_ms = clock_ms or (lambda: (time.monotonic() - start) * 1000.0)

    def record(self, process: str, kind: EventType, f: Op, value: dict[str, Any] | None = None,
               error: str | None = None) -> Event:
        """Write one event now and return it."""
        with self._lock:
            event = Event(self._index, round(self._clock_ms(), 1), process, kind, f,
                          dict(value or {}), error)
            self._index += 1
            self._out.write(json.dumps(event.to_plain(), sort_keys=True) + "\n")
            self._out.flush()
        return event

    def now_ms(self) -> float:
        """The history clock, for callers that schedule against it."""
        return float(self._clock_ms())
