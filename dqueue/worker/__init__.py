"""The worker runtime: register handlers on a ``Worker``, run them with ``dqueue-worker``."""

from dqueue.worker.app import Completion, DeadLetter, TaskContext, Verdict, Worker

__all__ = ["Completion", "DeadLetter", "TaskContext", "Verdict", "Worker"]
