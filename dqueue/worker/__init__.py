"""The worker runtime: register handlers on a ``Worker``, run them with ``dqueue-worker``."""

from dqueue.worker.app import Completion, DeadLetter, TaskContext, TaskHandle, Verdict, Worker
from dqueue.worker.options import Backoff, Retry, TaskOptions

__all__ = ["Backoff", "Completion", "DeadLetter", "Retry", "TaskContext", "TaskHandle",
           "TaskOptions", "Verdict", "Worker"]
