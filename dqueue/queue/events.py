"""What happened to tasks inside ``apply``, for the node's metrics and logs.

``apply`` returns one outcome per command, but some events happen to other tasks on the way:
a lease that expires as the clock passes, a task dead-lettered by that expiry. The node needs
them for its counters and its info log. This record is **not** replicated state: it is not in
snapshots, ``QueueState.restore`` keeps it, and its counters only grow for the life of the
process (as Prometheus counters do). It is still deterministic: the same commands give the
same counts and the same events in the same order.
"""

from __future__ import annotations

from enum import StrEnum


class QueueEvent(StrEnum):
    """The events counted by task type and queue."""

    ENQUEUED = "enqueued"            # a task created by an enqueue (duplicates are not)
    LEASED = "leased"                # a task given to a worker by a lease
    ACKED = "acked"                  # a lease ended by an ack (repeated acks are not)
    NACKED = "nacked"                # a lease ended by a nack
    EXPIRED = "expired"              # a lease ended by its expiry (buffered)
    DEAD_LETTERED = "dead_lettered"  # a task moved to the dead-letter queue (buffered)


#: Default bound on the events buffered between two drains.
MAX_BUFFERED_EVENTS = 1_024

Event = tuple[str, str, str]
#: A counter's key: (task type, queue name).
CountKey = tuple[str, str]


class EventLog:
    """Counters by event, task type and queue, and a bounded buffer of the rarer events.

    Invariants: every counter only grows; ``len(buffered) <= max_buffered``; ``dropped``
    counts the buffered-kind events that found the buffer full (they are still counted).

    Args:
        max_buffered: How many expired and dead-lettered events to keep until ``drain``.
    """

    __slots__ = ("acked", "buffered", "dead_lettered", "dropped", "enqueued", "expired",
                 "leased", "max_buffered", "nacked")

    def __init__(self, max_buffered: int = MAX_BUFFERED_EVENTS) -> None:
        if max_buffered < 0:
            raise ValueError("max_buffered must be >= 0")
        self.max_buffered = max_buffered
        # One dict per event, (type, queue) -> count, so the hot path does one lookup and one
        # store. The names are bounded by the state (types by what clients send, queues by what
        # was created); the node bounds the label values it exports (queue_events.py).
        self.enqueued: dict[CountKey, int] = {}
        self.leased: dict[CountKey, int] = {}
        self.acked: dict[CountKey, int] = {}
        self.nacked: dict[CountKey, int] = {}
        self.expired: dict[CountKey, int] = {}
        self.dead_lettered: dict[CountKey, int] = {}
        self.buffered: list[Event] = []
        self.dropped = 0

    def note(self, counts: dict[CountKey, int], event: QueueEvent, task_id: str,
             task_type: str, queue: str) -> None:
        """Count a rare event (``counts`` is its dict) and buffer it while there is room."""
        key = (task_type, queue)
        counts[key] = counts.get(key, 0) + 1
        if len(self.buffered) < self.max_buffered:
            self.buffered.append((event.value, task_id, task_type))
        else:
            self.dropped += 1

    def drain(self) -> list[Event]:
        """Return the buffered events, oldest first, and empty the buffer."""
        events, self.buffered = self.buffered, []
        return events

    def counts(self) -> dict[str, dict[str, int]]:
        """Return every counter summed over queues: event -> task type -> count, types
        sorted."""
        out: dict[str, dict[str, int]] = {}
        for event in QueueEvent:
            by_type: dict[str, int] = {}
            for (task_type, _), n in getattr(self, event.value).items():
                by_type[task_type] = by_type.get(task_type, 0) + n
            out[event.value] = dict(sorted(by_type.items()))
        return out

    def counts_by_queue(self) -> dict[str, dict[str, dict[str, int]]]:
        """Return a copy of every counter: event -> queue -> task type -> count, queues and
        types sorted (plain dicts with string keys: they cross the IPC link as they are)."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for event in QueueEvent:
            nested: dict[str, dict[str, int]] = {}
            for (task_type, queue), n in sorted(getattr(self, event.value).items(),
                                                key=lambda kv: (kv[0][1], kv[0][0])):
                nested.setdefault(queue, {})[task_type] = n
            out[event.value] = nested
        return out
