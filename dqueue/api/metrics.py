"""Prometheus metrics of the API process, and the Raft process's figures brought in over IPC.

``ApiMetrics`` registers the API's own counters and histograms in the registry given to
``create_app`` (never the global one). ``RaftCollector`` runs at scrape time in the scraping
thread: it asks the local Raft process for ``{"op": "metrics"}`` and a stale ``stats`` read, and
turns the plain values into metric families.

The ``metrics`` value the collector understands is a dict of name -> figure, where a figure is:

- a number: a gauge (a counter when the name ends in ``_total``);
- a string: a state, rendered ``name{name="<string>"} 1`` (``role`` -> ``role{role="leader"}``);
- ``{"buckets": [[upper_bound, cumulative_count], ...], "sum": s, "count": n}``: a histogram;
- ``{"by": label_name, "values": {label_value: number}}``: a labelled gauge or counter;
- ``{"by": [label_1, label_2, ...], "values": {value_1: {value_2: ... number}}}``: the same
  with several labels, the values nested one dict per label in the order of ``by``.

Names get the ``dqueue_raft_`` prefix unless they start with ``dqueue_``. Anything else is
skipped, never fatal.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import falcon
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from dqueue.api.metric_catalog import (
    DEFAULT_QUEUE,
    FIGURES,
    NOT_EXPORTED,
    QUEUE_TASKS,
    ROLE,
    ROLES,
    UP,
)
from dqueue.logs import log_event

logger = logging.getLogger(__name__)

# Distinct task types kept as label values; further types are counted under OTHER_TYPE so that
# a client inventing types cannot grow the metrics without bound.
MAX_TYPE_LABELS = 256
OTHER_TYPE = "_other"
# Request latency buckets in seconds: from a cached read to a 20 s long poll.
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
)
_NAME_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_]")
# In the HELP text of a figure missing from metric_catalog.py (a test fails on it).
UNDESCRIBED = "not described in dqueue/api/metric_catalog.py"


class TypeLabels:
    """Bounded set of task types used as label values."""

    def __init__(self, limit: int = MAX_TYPE_LABELS) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def label(self, task_type: str) -> str:
        """``task_type`` itself while fewer than ``limit`` types were seen, else OTHER_TYPE."""
        if task_type in self._seen:
            return task_type
        with self._lock:
            if len(self._seen) < self._limit:
                self._seen.add(task_type)
                return task_type
        return OTHER_TYPE


class ApiMetrics:
    """The API process's own metrics.

    Args:
        registry: where to register them.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        # No ``<name>_created`` gauge beside every counter and histogram: a second family per
        # fact that no dashboard reads (process-wide, and the API process has only this app).
        disable_created_metrics()
        self.types = TypeLabels()
        self.request_seconds = Histogram(
            "dqueue_http_request_duration_seconds", "HTTP request latency by route.",
            ["method", "route", "code"], buckets=LATENCY_BUCKETS_S, registry=registry,
        )
        # What the queue did (enqueued, acked, dead-lettered...) is counted once, by the
        # replicated state (dqueue_queue_tasks_*_total, leader only); the API counts only what
        # the queue does not see as an event: enqueues answered with an existing task.
        self.duplicates = Counter(
            "dqueue_http_enqueue_duplicates", "Enqueues through this node's API answered with "
            "an existing task (same idempotency key), by type.", ["type"], registry=registry,
        )
        self.enqueue_command_tasks = Histogram(
            "dqueue_enqueue_command_tasks", "Tasks per enqueue command sent to Raft (concurrent "
            "requests are coalesced).", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
            registry=registry,
        )
        self.lease_wait_seconds = Histogram(
            "dqueue_lease_wait_seconds", "Time a lease request waited for a task (long poll "
            "included).", buckets=LATENCY_BUCKETS_S, registry=registry,
        )
        # Labelled children by (metric, label values): ``labels()`` costs several microseconds
        # (argument checks, a lock); a dict lookup does not. Bounded like the label values.
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Counter | Histogram, *values: str) -> Any:
        """``metric.labels(*values)``, cached."""
        key = (metric, *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def count(self, counter: Counter, task_type: Any, n: int = 1) -> None:
        """Add ``n`` to ``counter`` for ``task_type`` (bounded label set)."""
        self.child(counter, self.types.label(str(task_type))).inc(n)


class MetricsMiddleware:
    """Falcon middleware timing every request by route template."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = getattr(req.context, "started", None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        route = req.uri_template or "unmatched"
        metrics = self._metrics
        metrics.child(metrics.request_seconds, req.method, route, str(resp.status_code)).observe(
            elapsed)


def metric_name(name: str) -> str:
    """A valid Prometheus name: ``dqueue_raft_<name>`` unless it starts with ``dqueue_``."""
    clean = _NAME_BAD_CHARS.sub("_", name)
    return clean if clean.startswith("dqueue_") else "dqueue_raft_" + clean


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def families_from_plain(figures: dict[str, Any], leader: bool = True) -> list[Metric]:
    """Turn the Raft process's ``metrics`` value into metric families (see module doc).

    Figures in the catalogue (metric_catalog.py) get their name, HELP text and base unit
    from it; cluster-wide ones only when ``leader``. Others keep their own name and a HELP
    text saying they are not described yet (a test fails on that text).
    """
    out: list[Metric] = []
    for raw_name, figure in sorted(figures.items(), key=lambda kv: str(kv[0])):
        if not isinstance(raw_name, str) or raw_name in NOT_EXPORTED:
            continue
        known = FIGURES.get(raw_name)
        if known is not None and known.cluster and not leader:
            continue
        name = known.name if known is not None else metric_name(raw_name)
        doc = known.help if known is not None else (
            f"Raft process figure {raw_name} ({UNDESCRIBED}).")
        if _is_number(figure):
            out.append(_number_family(name, doc, figure))
        elif isinstance(figure, str):
            family = GaugeMetricFamily(name, doc, labels=[_NAME_BAD_CHARS.sub("_", raw_name)])
            family.add_metric([figure], 1)
            out.append(family)
        elif isinstance(figure, dict) and "buckets" in figure:
            scale = known.scale if known is not None else 1.0
            family_or_none = _histogram_family(name, doc, figure, scale)
            if family_or_none is not None:
                out.append(family_or_none)
        elif isinstance(figure, dict) and isinstance(figure.get("values"), dict):
            out.append(_labelled_family(name, doc, figure))
    return out


def _number_family(name: str, doc: str, value: float) -> Metric:
    if name.endswith("_total"):
        return CounterMetricFamily(name[: -len("_total")], doc, value=value)
    return GaugeMetricFamily(name, doc, value=value)


def _labelled_family(name: str, doc: str, figure: dict[str, Any]) -> Metric:
    by = figure.get("by")
    names = [str(n) for n in by] if isinstance(by, list) and by else [str(by or "key")]
    labels = [_NAME_BAD_CHARS.sub("_", n) for n in names]
    family: GaugeMetricFamily | CounterMetricFamily
    if name.endswith("_total"):
        family = CounterMetricFamily(name[: -len("_total")], doc, labels=labels)
    else:
        family = GaugeMetricFamily(name, doc, labels=labels)
    for values, number in _nested_samples(figure["values"], len(labels)):
        family.add_metric(values, number)
    return family


def _nested_samples(values: dict[Any, Any], depth: int,
                    prefix: tuple[str, ...] = ()) -> Iterator[tuple[list[str], Any]]:
    """``(label values, number)`` of a ``depth``-deep dict of dicts, keys sorted; anything
    that is not a dict or a number at its depth is skipped."""
    for key, value in sorted(values.items(), key=lambda kv: str(kv[0])):
        if depth > 1:
            if isinstance(value, dict):
                yield from _nested_samples(value, depth - 1, (*prefix, str(key)))
        elif _is_number(value):
            yield [*prefix, str(key)], value


def _histogram_family(name: str, doc: str, figure: dict[str, Any],
                      scale: float = 1.0) -> Metric | None:
    """A histogram family; bounds and sum multiplied by ``scale`` (into base units)."""
    buckets: list[tuple[str, float]] = []
    for pair in figure.get("buckets") or []:
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not _is_number(pair[1]):
            return None
        bound = pair[0]
        if bound in ("+Inf", math.inf):
            bound_text = "+Inf"
        elif _is_number(bound):
            bound_text = repr(float(f"{bound * scale:.12g}"))
        else:
            return None
        buckets.append((bound_text, pair[1]))
    total = figure.get("sum")
    count = figure.get("count")
    if not _is_number(total) or not _is_number(count):
        return None
    if not buckets or buckets[-1][0] != "+Inf":
        buckets.append(("+Inf", count))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total * scale)


class RaftCollector(Collector):
    """Scrape-time bridge to the Raft process.

    Args:
        read: ``read(query_plain, timeout_ms, stale)`` through this thread's Raft client.
        timeout_ms: how long a scrape waits for the Raft process.
    """

    def __init__(self, read: Callable[[dict[str, Any], int, bool], Any], timeout_ms: int) -> None:
        self._read = read
        self._timeout_ms = timeout_ms

    def describe(self) -> list[Metric]:
        """Nothing: keeps the registry from scraping the Raft process at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(UP.name, UP.help)
        try:
            figures = self._read({"op": "metrics"}, self._timeout_ms, True)
            health = self._read({"op": "health"}, self._timeout_ms, True)
            stats = self._read({"op": "stats"}, self._timeout_ms, True)
        except Exception as exc:  # any failure of the link just means "down" for this scrape
            log_event(logger, logging.DEBUG, "metrics_scrape_failed", error=repr(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        role = health.get("role") if isinstance(health, dict) else None
        if isinstance(figures, dict) and isinstance(figures.get("role"), str):
            role = figures["role"]
        leader = role == "leader"
        if isinstance(role, str):
            family = GaugeMetricFamily(ROLE.name, ROLE.help, labels=["role"])
            for name in sorted({*ROLES, role}):
                family.add_metric([name], int(name == role))
            yield family
        if isinstance(figures, dict):
            yield from families_from_plain(figures, leader)
        if leader and isinstance(stats, dict):
            yield _depth_family(stats)


def _depth_family(stats: dict[str, Any]) -> Metric:
    """``dqueue_queue_tasks{queue, status}`` from a stats read: ``by_queue`` (named queues),
    or the totals ``by_status`` under the default queue (a Raft process without queues)."""
    depth = GaugeMetricFamily(QUEUE_TASKS.name, QUEUE_TASKS.help, labels=["queue", "status"])
    by_queue = stats.get("by_queue")
    if not isinstance(by_queue, dict):
        by_status = stats.get("by_status")
        by_queue = {DEFAULT_QUEUE: by_status} if isinstance(by_status, dict) else {}
    for queue, counts in sorted(by_queue.items(), key=lambda kv: str(kv[0])):
        if not isinstance(counts, dict):
            continue
        for status, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
            if _is_number(n):
                depth.add_metric([str(queue), str(status)], n)
    return depth
