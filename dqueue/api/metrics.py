"""Prometheus metrics of the API process, and the Raft process's figures brought in over IPC.

``ApiMetrics`` registers the API's own counters and histograms in the registry given to
``create_app`` (never the global one). ``RaftCollector`` runs at scrape time in the scraping
thread: it asks the local Raft process for ``{"op": "metrics"}`` and a stale ``stats`` read, and
turns the plain values into metric families.

The ``metrics`` value the collector understands is a dict of name -> figure, where a figure is:

- a number: a gauge (a counter when the name ends in ``_total``);
- a string: a state, rendered ``name{name="<string>"} 1`` (``role`` -> ``role{role="leader"}``);
- ``{"buckets": [[upper_bound, cumulative_count], ...], "sum": s, "count": n}``: a histogram;
- ``{"by": label_name, "values": {label_value: number}}``: a labelled gauge or counter.

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
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

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
# Help text of the Raft process's figures whose name does not say enough; the others get
# "<name> (from the Raft process).".
RAFT_FIGURE_HELP: dict[str, str] = {
    "snapshots_rejected_total": "InstallSnapshots this member refused, every reason.",
    "snapshots_rejected_by_reason_total": (
        "InstallSnapshots this member refused, by reason: checksum, invalid (would not "
        "restore), too_large (raft.max_snapshot_bytes), index_too_high, term_above_message."),
    "proposals_rejected_total": (
        "Proposals forwarded by a follower that this leader refused: they would not apply."),
}


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
        self.types = TypeLabels()
        self.request_seconds = Histogram(
            "dqueue_http_request_duration_seconds", "HTTP request latency by route.",
            ["method", "route", "code"], buckets=LATENCY_BUCKETS_S, registry=registry,
        )
        self.enqueued = Counter(
            "dqueue_tasks_enqueued", "Tasks enqueued through this node's API (duplicates "
            "excluded).", ["type"], registry=registry,
        )
        self.duplicates = Counter(
            "dqueue_tasks_duplicate", "Enqueues answered with an existing task (idempotency "
            "key).", ["type"], registry=registry,
        )
        self.leased = Counter(
            "dqueue_tasks_leased", "Tasks leased through this node's API.", ["type"],
            registry=registry,
        )
        self.acked = Counter(
            "dqueue_tasks_acked", "Tasks acknowledged through this node's API.", ["type"],
            registry=registry,
        )
        self.nacked = Counter(
            "dqueue_tasks_nacked", "Tasks negatively acknowledged through this node's API.",
            ["type"], registry=registry,
        )
        self.dead_lettered = Counter(
            "dqueue_tasks_dead_lettered", "Tasks moved to the dead-letter queue by a nack "
            "through this node's API.", ["type"], registry=registry,
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


def families_from_plain(figures: dict[str, Any]) -> list[Metric]:
    """Turn the Raft process's ``metrics`` value into metric families (see module doc)."""
    out: list[Metric] = []
    for raw_name, figure in sorted(figures.items()):
        if not isinstance(raw_name, str):
            continue
        name = metric_name(raw_name)
        doc = RAFT_FIGURE_HELP.get(raw_name) or f"{raw_name} (from the Raft process)."
        if _is_number(figure):
            out.append(_number_family(name, doc, figure))
        elif isinstance(figure, str):
            family = GaugeMetricFamily(name, doc, labels=[_NAME_BAD_CHARS.sub("_", raw_name)])
            family.add_metric([figure], 1)
            out.append(family)
        elif isinstance(figure, dict) and "buckets" in figure:
            family_or_none = _histogram_family(name, doc, figure)
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
    label = _NAME_BAD_CHARS.sub("_", str(figure.get("by") or "key"))
    family: GaugeMetricFamily | CounterMetricFamily
    if name.endswith("_total"):
        family = CounterMetricFamily(name[: -len("_total")], doc, labels=[label])
    else:
        family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in sorted(figure["values"].items(), key=lambda kv: str(kv[0])):
        if _is_number(value):
            family.add_metric([str(key)], value)
    return family


def _histogram_family(name: str, doc: str, figure: dict[str, Any]) -> Metric | None:
    buckets: list[tuple[str, float]] = []
    for pair in figure.get("buckets") or []:
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not _is_number(pair[1]):
            return None
        bound = pair[0]
        bound_text = "+Inf" if bound in ("+Inf", math.inf) else str(float(bound))
        buckets.append((bound_text, pair[1]))
    total = figure.get("sum")
    count = figure.get("count")
    if not _is_number(total) or not _is_number(count):
        return None
    if not buckets or buckets[-1][0] != "+Inf":
        buckets.append(("+Inf", count))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total)


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
        up = GaugeMetricFamily("dqueue_raft_up", "1 when the local Raft process answered.")
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
        if isinstance(figures, dict):
            yield from families_from_plain(figures)
            role = health.get("role") if isinstance(health, dict) else None
            if "role" not in figures and isinstance(role, str):
                family = GaugeMetricFamily(
                    "dqueue_raft_role", "This node's Raft role (1 for the current one).",
                    labels=["role"],
                )
                family.add_metric([role], 1)
                yield family
        by_status = stats.get("by_status") if isinstance(stats, dict) else None
        if isinstance(by_status, dict):
            depth = GaugeMetricFamily(
                "dqueue_queue_depth", "Tasks by status (this node's applied state).",
                labels=["status"],
            )
            for status, n in sorted(by_status.items()):
                if _is_number(n):
                    depth.add_metric([str(status)], n)
            yield depth
