"""The last 15 minutes of queue figures, kept in the API process for the dashboard's charts.

The Raft process keeps counters, not history: a ``Sampler`` thread reads this node's own view
(stale local reads: no Raft round trip, no leader needed) every ``interval_s`` seconds and puts
one ``Sample`` in a ``SampleRing``, a bounded deque (``window_s / interval_s`` samples, about
180 small dicts). ``GET /stats/history`` answers ``SampleRing.snapshot``: the depth by status
and the enqueue, ack and dead-letter rates between consecutive samples, over every queue.

The thread starts on the first request that needs it (the dashboard's page or the history
route), so an app built by a unit test reads nothing in the background.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dqueue.logs import log_event

logger = logging.getLogger(__name__)

INTERVAL_S = 5.0
WINDOW_S = 900.0
# The counters of the Raft process's figures the charts show (dqueue/node/queue_events.py).
EVENTS = ("enqueued", "acked", "dead_lettered")
READ_TIMEOUT_MS = 1_000

Reader = Callable[[dict[str, Any], int, bool], Any]


@dataclass(frozen=True)
class Sample:
    """One reading: wall-clock time, tasks by status, and each event's running total."""

    t_ms: int
    depth: dict[str, int]
    totals: dict[str, int | None]


def event_total(figures: Any, event: str) -> int | None:
    """The running total of one queue event over every queue and task type (None when not
    reported). The values are by type, or by queue then type (dqueue/node/queue_events.py)."""
    if not isinstance(figures, dict):
        return None
    family = figures.get(f"dqueue_queue_tasks_{event}_total")
    values = family.get("values") if isinstance(family, dict) else None
    if not isinstance(values, dict):
        return None
    return _sum_counts(values)


def _sum_counts(values: dict[Any, Any]) -> int:
    """The sum of the integers in a dict whose values are integers or such dicts (two levels
    at most; anything else is skipped)."""
    total = 0
    for value in values.values():
        if isinstance(value, dict):
            total += sum(n for n in value.values()
                         if isinstance(n, int) and not isinstance(n, bool))
        elif isinstance(value, int) and not isinstance(value, bool):
            total += value
    return total


def depth_of(stats: Any) -> dict[str, int]:
    """Tasks by status from a ``stats`` read (an empty dict when it has none)."""
    by_status = stats.get("by_status") if isinstance(stats, dict) else None
    if not isinstance(by_status, dict):
        return {}
    return {str(k): n for k, n in by_status.items()
            if isinstance(n, int) and not isinstance(n, bool)}


class SampleRing:
    """A bounded, thread-safe ring of samples covering ``window_s`` seconds.

    Args:
        interval_s: the time between samples.
        window_s: how far back the ring reaches.
    """

    def __init__(self, interval_s: float = INTERVAL_S, window_s: float = WINDOW_S) -> None:
        if interval_s <= 0 or window_s < interval_s:
            raise ValueError("need 0 < interval_s <= window_s")
        self.interval_s = interval_s
        self.window_s = window_s
        self._samples: collections.deque[Sample] = collections.deque(
            maxlen=int(window_s / interval_s) + 1)
        self._lock = threading.Lock()

    def add(self, sample: Sample) -> None:
        """Append one sample (the oldest goes when the ring is full)."""
        with self._lock:
            self._samples.append(sample)

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples)

    def snapshot(self) -> dict[str, Any]:
        """The plain answer of ``GET /stats/history``: each sample with its rates per second
        since the sample before (None for the first, after a gap, or after a counter reset)."""
        with self._lock:
            samples = list(self._samples)
        out = []
        previous: Sample | None = None
        for sample in samples:
            rates: dict[str, float | None] = {}
            for event in EVENTS:
                rates[event] = _rate(previous, sample, event, self.interval_s)
            out.append({"t_ms": sample.t_ms, "depth": sample.depth, "rates": rates})
            previous = sample
        return {"interval_seconds": self.interval_s, "window_seconds": self.window_s,
                "samples": out}


def _rate(previous: Sample | None, sample: Sample, event: str, interval_s: float) -> float | None:
    if previous is None:
        return None
    before, now = previous.totals.get(event), sample.totals.get(event)
    elapsed_s = (sample.t_ms - previous.t_ms) / 1000
    if before is None or now is None or now < before or elapsed_s <= 0:
        return None
    if elapsed_s > 3 * interval_s:
        return None  # a gap (the Raft process did not answer): no rate across it
    return round((now - before) / elapsed_s, 3)


class Sampler:
    """Fills a ``SampleRing`` from this node's view, on a daemon thread started on demand.

    Args:
        read: ``read(query_plain, timeout_ms, stale)`` through the calling thread's Raft client.
        ring: where the samples go.
        clock_ms: wall-clock milliseconds (the charts' time axis).
    """

    def __init__(self, read: Reader, ring: SampleRing | None = None,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self._read = read
        self.ring = ring or SampleRing()
        self._clock_ms = clock_ms
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def sample_once(self) -> bool:
        """Take one sample; False (and nothing kept) when the Raft process did not answer."""
        try:
            stats = self._read({"op": "stats"}, READ_TIMEOUT_MS, True)
            figures = self._read({"op": "metrics"}, READ_TIMEOUT_MS, True)
        except Exception as exc:  # a down Raft process leaves a gap in the charts
            log_event(logger, logging.DEBUG, "ui_sample_failed", error=repr(exc))
            return False
        totals = {event: event_total(figures, event) for event in EVENTS}
        self.ring.add(Sample(self._clock_ms(), depth_of(stats), totals))
        return True

    def ensure_started(self) -> None:
        """Start the sampling thread unless it runs (idempotent, thread-safe)."""
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="ui-sampler", daemon=True)
                thread.start()
                self._thread = thread

    def stop(self) -> None:
        """Stop the thread (for tests; the API process just exits)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.ring.interval_s)
