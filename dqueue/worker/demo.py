"""Built-in demo handlers, run by ``dqueue-worker`` when no ``--app`` is given.

- ``email``: logs the message it would send (``{"to": ..., "subject": ...}``).
- ``sleep``: sleeps ``payload["seconds"]`` (or the payload itself, a number); long sleeps keep
  their task because the runtime extends the lease.
- ``fail``: always raises, so the task is retried and then dead-lettered; with
  ``{"dead_letter": true}`` it goes to the dead-letter queue at once.
- ``noop``: does nothing (benchmarks).
"""

from __future__ import annotations

import time
from typing import Any

from dqueue.worker.app import DeadLetter, TaskContext, Worker


def build() -> Worker:
    """A Worker with the demo handlers registered."""
    worker = Worker("demo")

    @worker.task("email")
    def email(payload: Any, ctx: TaskContext) -> None:
        to = payload.get("to") if isinstance(payload, dict) else payload
        subject = payload.get("subject", "") if isinstance(payload, dict) else ""
        ctx.log.info("email to %s (subject %r), task %s attempt %d", to, subject, ctx.task_id,
                     ctx.attempt)

    @worker.task("sleep")
    def sleep(payload: Any, ctx: TaskContext) -> None:
        seconds = payload.get("seconds", 1) if isinstance(payload, dict) else payload
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise DeadLetter(f"sleep needs a number of seconds, got {seconds!r}")
        time.sleep(float(seconds))

    @worker.task("fail")
    def fail(payload: Any, ctx: TaskContext) -> None:
        message = "demo failure"
        if isinstance(payload, dict):
            message = str(payload.get("message", message))
            if payload.get("dead_letter"):
                raise DeadLetter(message)
        raise RuntimeError(message)

    @worker.task("noop")
    def noop(payload: Any, ctx: TaskContext) -> None:
        return None

    return worker
