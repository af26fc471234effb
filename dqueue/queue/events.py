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
    """The events counted by task type."""

    ENQUEUED = "enqueued"            # a task created by an enqueue (duplicates are not)
    LEASED = "leased"                # a task given to a worker by a lease
    ACKED = "acked"                  # a lease ended by an ack (repeated acks are not)
    NACKED = "nacked"                # a lease ended by a nack
    EXPIRED = "expired"              # a lease ended by its expiry (buffered)
    DEAD_LETTERED = "dead_lettered"  # a task moved to the dead-letter queue (buffered)


#: Default bound on the events buffered between two drains.
MAX_BUFFERED_EVENTS = 1_024

Event = tuple[str, str, str]


class EventLog:
    """Counters by event and task type, and a bounded buffer of the rarer events.

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
        # One dict per event, type -> count, so the hot path does one lookup and one store.
        self.enqueued: dict[str, int] = {}
        self.leased: dict[str, int] = {}
        self.acked: dict[str, int] = {}
        self.nacked: dict[str, int] = {}
        self.expired: dict[str, int] = {}
        self.dead_lettered: dict[str, int] = {}
        self.buffered: list[Event] = []
        self.dropped = 0

    def note(self, counts: dict[str, int], event: QueueEvent, task_id: str,
             task_type: str) -> None:
        """Count a rare event (``counts`` is its dict) and buffer it while there is room."""
        counts[task_type] = counts.get(task_type, 0) + 1
        if len(self.buffered) < self.max_buffered:
            self.buffered.append((event.value, task_id, task_type))
        else:
            self.dropped += 1

    def drain(self) -> list[Event]:
        """Return the buffered events, oldest first, and empty the buffer."""
        events, self.buffered = self.buffered, []
        return events

    def counts(self) -> dict[str, dict[str, int]]:
        """Return a copy of every counter: event -> task type -> count, types sorted."""
        return {event.value: dict(sorted(getattr(self, event.value).items()))
                for event in QueueEvent}
