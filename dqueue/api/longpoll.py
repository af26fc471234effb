"""A bound on the long polls one API process parks, so that they never hold every thread.

Waitress serves each request on one of ``http_threads`` threads, and a parked long poll
(``POST /tasks/lease`` with ``wait_seconds``) holds its thread for up to ``max_wait``: 33 of
them once held all 32 threads and ``/health`` waited 4.5 s. At most ``max_parked_polls`` wait at
once; a poll beyond them is answered at once, without a command: ``204`` (no task) with the
header ``Dqueue-Wait: refused`` and ``Retry-After`` (docs/http-api.md). Trying it without a
wait instead cost one lease command in the log per refused poll.
"""

from __future__ import annotations

import threading

# The share of the HTTP threads that long polls may hold; the rest serve everything else.
PARKED_SHARE = 0.75
WAIT_REFUSED_HEADER = "Dqueue-Wait"
RETRY_AFTER_S = 1


def max_parked_polls(http_threads: int) -> int:
    """The long polls parked at once by an API process of ``http_threads`` threads."""
    return max(1, min(http_threads - 1, int(http_threads * PARKED_SHARE)))


class LongPollGate:
    """Counts the long polls parked at once, up to ``limit``. Thread-safe.

    Args:
        limit: most long polls parked at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parked = 0
        self.refused = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        """Take a place for a long poll; False when all ``limit`` are taken (and count it)."""
        with self._lock:
            if self.parked >= self.limit:
                self.refused += 1
                return False
            self.parked += 1
            return True

    def leave(self) -> None:
        """Give back a place taken by ``try_enter``."""
        with self._lock:
            self.parked -= 1
