"""The node's side of the queue state machine: taking and restoring its snapshots (with the
garbage collector paused, gcpause.py), and what it reports about itself (per-type event
counters for /metrics, info logs of lease expiries and dead-lettering).

The events happen inside ``QueueState.apply`` (an expiry happens lazily, as the cluster clock
passes it); the state machine counts and buffers them, and the Raft process reads them here after
each batch it applies. Every member applies the same commands, so these counters describe the
whole cluster's queue, not only the requests this node took in.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

from dqueue.logs import log_event
from dqueue.node.gcpause import paused_gc
from dqueue.queue import QueueConfig, QueueState

# Label values of the dqueue_queue_tasks_*_total counters are bounded so that clients inventing
# types, or an operator creating many queues, cannot grow /metrics without bound: the first
# MAX_QUEUE_LABELS queues and MAX_TYPE_LABELS types (by name) keep their own values, the rest
# are summed under OTHER_LABEL; past MAX_EVENT_SERIES (queue, type) pairs in one family, a
# queue's further types are summed under (queue, OTHER_LABEL). A family thus has at most
# MAX_EVENT_SERIES + MAX_QUEUE_LABELS + 1 series, and its sums by queue stay exact for the
# queues that have a label of their own.
MAX_TYPE_LABELS = 256
MAX_QUEUE_LABELS = 64
MAX_EVENT_SERIES = 1_024
OTHER_LABEL = "_other"


def snapshot_queue(queue: QueueState) -> bytes:
    """The snapshot bytes of ``queue``, built with the cyclic collector paused (gcpause.py)."""
    with paused_gc():
        return queue.snapshot()


def restore_queue(queue: QueueState, data: bytes) -> None:
    """Restore ``queue`` from snapshot bytes, then freeze what the restore built.

    The cyclic collector is paused while the restore builds millions of objects (gcpause.py);
    freezing them afterwards keeps later full collections from walking them again. The queue's
    objects form no reference cycles, so reference counting still frees each task when it is
    acked or pruned.

    Raises:
        ValueError: ``data`` is not a valid snapshot (``queue`` is then unchanged).
    """
    with paused_gc():
        queue.restore(data)
    gc.freeze()


class SnapshotCheck:
    """The Raft core's snapshot validator on this node: a snapshot from a leader is accepted
    only if it restores into a scratch ``QueueState``, before it is persisted or acknowledged
    (a snapshot persisted and then failing to restore would stop the node at every restart).

    The last accepted scratch state is kept, so that installing the same bytes (``install``)
    does not decode them a second time.

    Args:
        config_of: the queue settings in force (a snapshot without settings restores under
            them, as ``QueueState.restore`` does).
    """

    def __init__(self, config_of: Callable[[], QueueConfig]) -> None:
        self._config_of = config_of
        self._accepted: tuple[bytes, QueueState] | None = None

    def __call__(self, data: bytes) -> bool:
        """Whether ``data`` restores; never raises."""
        self._accepted = None  # at most one scratch state alive besides the real one
        scratch = QueueState(self._config_of())
        try:
            restore_queue(scratch, data)
        except Exception:  # bytes from a peer: whatever fails to restore is invalid
            return False
        self._accepted = (data, scratch)
        return True

    def install(self, queue: QueueState, data: bytes) -> None:
        """Restore ``queue`` from ``data``: from the scratch state when it was restored from
        exactly these bytes (the object the core validated), else by decoding them."""
        accepted, self._accepted = self._accepted, None
        if accepted is not None and accepted[0] is data:
            queue.adopt(accepted[1])
        else:
            restore_queue(queue, data)


def log_queue_events(queue: QueueState, logger: logging.Logger) -> None:
    """Log, at info, each lease expiry and dead-lettering applied since the last call."""
    for event, task_id, task_type in queue.drain_events():
        log_event(logger, logging.INFO, f"task_{event}", task_id=task_id, task_type=task_type)


def bounded_labels(by_queue: dict[str, dict[str, int]],
                   max_queues: int = MAX_QUEUE_LABELS, max_types: int = MAX_TYPE_LABELS,
                   max_series: int = MAX_EVENT_SERIES) -> dict[str, dict[str, int]]:
    """``queue -> type -> count`` with the label values bounded as described above (the total
    count is unchanged)."""
    queues = sorted(by_queue)
    kept_queues = set(queues[:max_queues])
    kept_types = set(sorted({t for by_type in by_queue.values() for t in by_type})[:max_types])
    out: dict[str, dict[str, int]] = {}
    series = 0
    for queue in queues:
        queue_label = queue if queue in kept_queues else OTHER_LABEL
        row = out.setdefault(queue_label, {})
        for task_type, count in sorted(by_queue[queue].items()):
            type_label = task_type if task_type in kept_types else OTHER_LABEL
            if type_label not in row and series >= max_series:
                type_label = OTHER_LABEL
            if type_label not in row:
                series += 1
            row[type_label] = row.get(type_label, 0) + count
    return out


def queue_event_metrics(queue: QueueState) -> dict[str, Any]:
    """The queue's event counters as labelled figures of the ``metrics`` read, by queue and
    task type (``{"by": ["queue", "type"], "values": {queue: {type: n}}}``)."""
    out: dict[str, Any] = {}
    for event, by_queue in queue.event_counts_by_queue().items():
        out[f"dqueue_queue_tasks_{event}_total"] = {"by": ["queue", "type"],
                                                    "values": bounded_labels(by_queue)}
    out["dqueue_queue_events_dropped_total"] = queue.dropped_events()
    return out
