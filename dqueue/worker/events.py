"""The worker's log events (docs/worker.md): one line per task event, and whether the server can
be reached.

Every task event carries ``task_id``, ``type``, ``queue`` and ``attempt``; the end of a run adds
``duration_ms``, a failure its ``error`` and the last lines of its ``traceback`` as one field
(one JSON line, never a multi-line traceback). ``dqueue.logs`` renders them as JSON lines or text.
"""

from __future__ import annotations

import logging
from typing import Any

from dqueue.client.task import Task
from dqueue.logs import log_event
from dqueue.worker.app import Completion, Verdict

log = logging.getLogger("dqueue.worker")

UNREACHABLE_REPEAT_S = 10.0  # while the server cannot be reached, warn again this often


def log_task(event: str, task: Task, level: int = logging.INFO, **fields: Any) -> None:
    """Log one task event (``task_leased``, ``task_released``, ``lease_lost``...)."""
    log_event(log, level, event, task_id=task.id, type=task.type, queue=task.queue,
              attempt=task.attempts, **fields)


def log_completion(completion: Completion, duration_ms: float) -> None:
    """Log the end of a run: ``task_done``, ``task_retry`` or ``task_dead_letter`` (a
    dropped verdict, a lost lease, is logged where the loss is found)."""
    task, verdict = completion.task, completion.verdict
    duration = round(duration_ms, 1)
    if verdict is Verdict.ACK:
        log_task("task_done", task, duration_ms=duration)
    elif verdict is Verdict.NACK and task.attempts <= task.max_retries:
        log_task("task_retry", task, logging.WARNING, duration_ms=duration,
                 error=completion.reason, traceback=completion.traceback)
    elif verdict is not Verdict.DROP:
        # Dead-lettered by the handler (DeadLetter), or its retries are used up.
        log_task("task_dead_letter", task, logging.ERROR, duration_ms=duration,
                 error=completion.reason, traceback=completion.traceback)


class Reachability:
    """Says when the server cannot be reached: a warning at the first failure, again every
    ``repeat_s`` while it lasts, and one line when the server answers again. Used by one
    thread (the transport's).

    Args:
        server: The server's URLs or endpoints, as logged.
        transport: ``http`` or ``zmq``.
        repeat_s: Seconds between warnings while unreachable.
    """

    def __init__(self, server: list[str], transport: str,
                 repeat_s: float = UNREACHABLE_REPEAT_S) -> None:
        self.server = server
        self.transport = transport
        self.repeat_s = repeat_s
        self.down_since: float | None = None
        self._next_warning_at = 0.0
        self.warnings = 0

    def failed(self, now: float, error: str) -> None:
        """No answer from the server (``now``: monotonic seconds)."""
        if self.down_since is None:
            self.down_since, self._next_warning_at = now, now
        if now >= self._next_warning_at:
            self.warnings += 1
            log_event(log, logging.WARNING, "server_unreachable", server=self.server,
                      transport=self.transport, for_s=round(now - self.down_since, 1),
                      error=error)
            while self._next_warning_at <= now:  # on the 10 s grid of the first warning
                self._next_warning_at += self.repeat_s

    def reached(self, now: float) -> None:
        """The server answered (anything, even a refusal)."""
        if self.down_since is not None:
            log_event(log, logging.INFO, "server_reachable", server=self.server,
                      transport=self.transport, after_s=round(now - self.down_since, 1))
            self.down_since = None
