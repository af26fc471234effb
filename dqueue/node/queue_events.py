"""The node's side of the queue state machine: restoring it from a snapshot, and what it reports
about itself (per-type event counters for /metrics, info logs of lease expiries and
dead-lettering).

The events happen inside ``QueueState.apply`` (an expiry happens lazily, as the cluster clock
passes it); the state machine counts and buffers them, and the Raft process reads them here after
each batch it applies. Every member applies the same commands, so these counters describe the
whole cluster's queue, not only the requests this node took in.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from dqueue.logs import log_event
from dqueue.queue import QueueState

# Distinct task types exported as label values; the rest are summed under OTHER_TYPE so that
# clients inventing types cannot grow /metrics without bound (same bound as the API's).
MAX_TYPE_LABELS = 256
OTHER_TYPE = "_other"


def restore_queue(queue: QueueState, data: bytes) -> None:
    """Restore ``queue`` from snapshot bytes, then freeze what the restore built.

    ``QueueState.restore`` already keeps the cyclic collector paused while it builds millions of
    objects; freezing them afterwards keeps later full collections from walking them again. The
    queue's objects form no reference cycles, so reference counting still frees each task when
    it is acked or pruned.
    """
    queue.restore(data)
    gc.freeze()


def log_queue_events(queue: QueueState, logger: logging.Logger) -> None:
    """Log, at info, each lease expiry and dead-lettering applied since the last call."""
    for event, task_id, task_type in queue.drain_events():
        log_event(logger, logging.INFO, f"task_{event}", task_id=task_id, task_type=task_type)


def queue_event_metrics(queue: QueueState) -> dict[str, Any]:
    """The queue's event counters as labelled figures of the ``metrics`` read."""
    out: dict[str, Any] = {}
    for event, by_type in queue.event_counts().items():
        values: dict[str, int] = {}
        for n, (task_type, count) in enumerate(sorted(by_type.items())):
            key = task_type if n < MAX_TYPE_LABELS else OTHER_TYPE
            values[key] = values.get(key, 0) + count
        out[f"dqueue_queue_tasks_{event}_total"] = {"by": "type", "values": values}
    out["dqueue_queue_events_dropped_total"] = queue.dropped_events()
    return out
