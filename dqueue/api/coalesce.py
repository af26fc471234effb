"""Enqueue coalescing: concurrent enqueue requests of one API process share one Raft entry.

Each waitress thread hands its validated tasks to ``EnqueueCoalescer.submit`` and waits. A few
sender threads, each with its own Raft client (ZeroMQ sockets are never shared), take the first
waiting job, add every job already queued behind it (up to ``MAX_BATCH_TASKS`` tasks and
``max_batch_bytes`` of request bodies), propose them as one ``enqueue`` command and hand each job
its slice of the outcome. Nobody waits for a batch to fill: an idle node sends a lone request at
once, a busy one sends what accumulated during the previous round trip, so the number of Raft
entries per second stays bounded while requests per second grow.

Order and idempotency are those of the tasks in the one command: two requests with the same
key in one batch get the first's task, the second flagged as a duplicate, as if sent in turn.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dqueue.api.raft_link import RaftClientLike
from dqueue.node.ipc_client import RaftClientError

MAX_BATCH_TASKS = 1_000
# Sender threads, hence enqueue commands in flight from one API process at a time.
SENDERS = 2


@dataclass
class _Job:
    tasks: list[dict[str, Any]]
    body_bytes: int
    done: threading.Event = field(default_factory=threading.Event)
    outcome: dict[str, Any] | None = None
    error: Exception | None = None


class EnqueueCoalescer:
    """Merges concurrent enqueues into shared commands.

    Args:
        client_factory: makes one Raft client per sender thread.
        timeout_ms: the commit deadline of each command.
        max_batch_bytes: bound on the summed request bodies of one command (a single larger
            request is still sent, alone).
        senders: number of sender threads.
        observe: called with the number of tasks of every command sent (for metrics).
    """

    def __init__(
        self, client_factory: Callable[[], RaftClientLike], timeout_ms: int,
        max_batch_bytes: int, senders: int = SENDERS,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self._observe = observe
        self._factory = client_factory
        self._timeout_ms = timeout_ms
        self._max_batch_bytes = max_batch_bytes
        self._queue: collections.deque[_Job] = collections.deque()
        self._ready = threading.Condition()
        self._senders = senders
        self._started = False
        self.commands_sent = 0

    def _start(self) -> None:
        """Start the sender threads on first use (under ``_ready``)."""
        self._started = True
        for i in range(self._senders):
            threading.Thread(target=self._sender, name=f"enqueue-{i}", daemon=True).start()

    def submit(self, tasks: list[dict[str, Any]], body_bytes: int) -> dict[str, Any]:
        """Enqueue ``tasks`` (validated plain NewTasks); block until their outcome.

        Returns:
            The outcome for these tasks alone: ``{"ok": True, "value": {"tasks", "duplicates"}}``
            or the failure of the command that carried them.

        Raises:
            RaftClientError: what the Raft client raised for that command (or any other
                exception met while sending it).
        """
        job = _Job(tasks, body_bytes)
        with self._ready:
            if not self._started:
                self._start()
            self._queue.append(job)
            self._ready.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        if job.outcome is None:
            raise RuntimeError("enqueue job finished without an outcome")
        return job.outcome

    def _take(self) -> list[_Job]:
        """Wait for a job, then take it and every queued job that fits behind it."""
        with self._ready:
            while not self._queue:
                self._ready.wait()
            jobs = [self._queue.popleft()]
            n_tasks, n_bytes = len(jobs[0].tasks), jobs[0].body_bytes
            while self._queue:
                nxt = self._queue[0]
                if (n_tasks + len(nxt.tasks) > MAX_BATCH_TASKS
                        or n_bytes + nxt.body_bytes > self._max_batch_bytes):
                    break
                jobs.append(self._queue.popleft())
                n_tasks += len(nxt.tasks)
                n_bytes += nxt.body_bytes
        return jobs

    def _sender(self) -> None:
        client: RaftClientLike | None = None
        while True:
            jobs = self._take()
            try:
                if client is None:
                    client = self._factory()
                self._send(client, jobs)
            except Exception as exc:  # a bug or a broken client: fail these jobs, keep serving
                for job in jobs:
                    if job.outcome is None and job.error is None:
                        job.error = exc
            finally:
                for job in jobs:
                    job.done.set()

    def _send(self, client: RaftClientLike, jobs: list[_Job]) -> None:
        tasks = [task for job in jobs for task in job.tasks]
        try:
            outcome = client.command({"op": "enqueue", "tasks": tasks},
                                     timeout_ms=self._timeout_ms)
        except RaftClientError as exc:
            for job in jobs:
                job.error = exc
            return
        self.commands_sent += 1
        if self._observe is not None:
            self._observe(len(tasks))
        if not outcome.get("ok"):
            if len(jobs) == 1:
                jobs[0].outcome = outcome
            else:  # one job's tasks were refused: retry each alone so only it fails
                for job in jobs:
                    self._send(client, [job])
            return
        value = outcome["value"]
        start = 0
        for job in jobs:
            end = start + len(job.tasks)
            job.outcome = {"ok": True, "value": {"tasks": value["tasks"][start:end],
                                                 "duplicates": value["duplicates"][start:end]}}
            start = end
