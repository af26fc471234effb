"""What a worker says of itself every few seconds: the heartbeat of the workers table.

Both runtimes send one every ``RuntimeConfig.heartbeat_ms`` (``POST /workers/heartbeat`` over
HTTP, the ``heartbeat`` message over ZeroMQ), and one with ``leaving`` when they stop, so the
worker leaves ``GET /workers`` at once; after a crash it is dropped once three intervals pass
without a heartbeat (dqueue/queue/workers.py, docs/worker.md "Seeing the workers").

A heartbeat is not a lease extension: leases are extended on their own schedule (runtime.py).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from dqueue.queue import fields

DEFAULT_HEARTBEAT_MS = 5_000


def host_name() -> str:
    """This host's name, cut to the table's bound (``localhost`` if it has none)."""
    name = "".join(ch for ch in socket.gethostname() if ch.isprintable())
    return name[:fields.WORKER_HOST.max_chars] or "localhost"


class Heartbeats:
    """The body of this worker's heartbeats, and when the next one is due.

    Args:
        worker_id: The id its leases are held under.
        concurrency: Handler threads.
        queues: Queues it leases from (empty: the queue ``default``).
        types: Task types it leases.
        heartbeat_ms: Interval; 0 sends none.
    """

    def __init__(self, worker_id: str, concurrency: int, queues: Sequence[str],
                 types: Sequence[str], heartbeat_ms: int = DEFAULT_HEARTBEAT_MS) -> None:
        self.heartbeat_ms = heartbeat_ms
        self._fixed: dict[str, Any] = {
            "worker_id": worker_id, "host": host_name(), "pid": os.getpid(),
            "queues": list(queues) or [fields.DEFAULT_QUEUE],
            "types": list(types)[:fields.MAX_TYPES], "concurrency": concurrency,
            "started_at_ms": int(time.time() * 1000), "heartbeat_ms": heartbeat_ms}
        self._next_at = 0.0  # monotonic seconds; 0: at once
        self.sent = 0

    @property
    def enabled(self) -> bool:
        """Whether heartbeats are sent at all."""
        return self.heartbeat_ms > 0

    def is_due(self, now: float) -> bool:
        """Whether a heartbeat is due at monotonic time ``now``."""
        return self.enabled and now >= self._next_at

    def body(self, in_flight: int, now: float) -> dict[str, Any]:
        """The next heartbeat's fields (the ``worker_heartbeat`` command's, in milliseconds);
        the one after is due an interval from ``now``."""
        self._next_at = now + self.heartbeat_ms / 1000
        self.sent += 1
        return {**self._fixed, "in_flight": min(in_flight, fields.WORKER_IN_FLIGHT.high)}
