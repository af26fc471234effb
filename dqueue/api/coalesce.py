"""Enqueue coalescing: concurrent enqueue requests of one API process share one Raft entry.

The waitress threads that carry enqueue requests take turns as the sender (flat combining): a
request that finds fewer than ``max_in_flight`` commands in flight sends at once, alone, from its
own thread with its own Raft client (ZeroMQ sockets are never shared). The others queue and
sleep. A sender, once its command is answered, takes every job that queued meanwhile (up to
``fields.MAX_BATCH`` tasks and ``max_batch_bytes`` of request bodies) and hands that batch to the
thread of its first job, which wakes and sends it; then it wakes the jobs it answered. With
nothing queued the turn is released.

So an idle node sends a lone request at once, with no thread hand-off, and a busy one sends what
accumulated during the previous round trip: Raft entries per second stay bounded while requests
per second grow, and each request costs one wake-up at most. Each job sleeps on a lock of its
own (released once per event: "your batch" or "your outcome"), not on a condition of the shared
lock, so a woken thread never contends for the shared lock again.

One bad request never fails another: a command that cannot be encoded (a lone surrogate that
slipped past validation) or that the queue refuses is sent again as one command per request, so
only the bad request's own caller sees the refusal (a 400).

Order and idempotency are those of the tasks in the one command: two requests with the same
key in one batch get the first's task, the second flagged as a duplicate, as if sent in turn.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from dqueue.api.raft_link import RaftClientLike
from dqueue.protocol.ipc_client import BadRequest, RaftClientError
from dqueue.queue.fields import MAX_BATCH

# Enqueue commands in flight from one API process at a time.
MAX_IN_FLIGHT = 1


class _Job:
    """One request's tasks, waiting for its outcome or for a batch to send.

    ``wake`` is created held and released by another thread once per event: a batch handed to
    this job's thread (``batch`` set), or the job's outcome (``finished`` set). A job handed a
    batch is no longer queued and finishes itself, so it never receives both from others.
    """

    __slots__ = ("batch", "body_bytes", "error", "finished", "outcome", "tasks", "wake")

    def __init__(self, tasks: list[dict[str, Any]], body_bytes: int) -> None:
        self.tasks = tasks
        self.body_bytes = body_bytes
        self.wake = threading.Lock()
        self.wake.acquire()
        self.outcome: dict[str, Any] | None = None
        self.error: Exception | None = None
        self.finished = False  # outcome or error set
        self.batch: list[_Job] | None = None  # the jobs this job's thread must send


class EnqueueCoalescer:
    """Merges concurrent enqueues into shared commands.

    Args:
        client_of: returns the calling thread's Raft client.
        timeout_ms: the commit deadline of each command.
        max_batch_bytes: bound on the summed request bodies of one command (a single larger
            request is still sent, alone).
        max_in_flight: sending turns, hence commands in flight at a time.
        observe: called with the number of tasks of every command sent (for metrics).
    """

    def __init__(
        self, client_of: Callable[[], RaftClientLike], timeout_ms: int, max_batch_bytes: int,
        max_in_flight: int = MAX_IN_FLIGHT, observe: Callable[[int], None] | None = None,
    ) -> None:
        self._client_of = client_of
        self._timeout_ms = timeout_ms
        self._max_batch_bytes = max_batch_bytes
        self._max_in_flight = max_in_flight
        self._observe = observe
        self._lock = threading.Lock()
        self._queue: collections.deque[_Job] = collections.deque()
        # Invariant: <= max_in_flight, one per batch being sent or handed over; the queue is
        # empty whenever a turn is free (turns are released only with nothing queued).
        self._turns_taken = 0
        self.commands_sent = 0

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
        with self._lock:
            if self._turns_taken < self._max_in_flight:
                self._turns_taken += 1
                job.batch = [job]
            else:
                self._queue.append(job)
        if job.batch is None:
            job.wake.acquire()  # until our outcome, or a batch (starting with us) to send
        if job.batch is not None:
            self._send_turn(job.batch)
        if job.error is not None:
            raise job.error
        if job.outcome is None:
            raise RuntimeError("enqueue job finished without an outcome")
        return job.outcome

    def _send_turn(self, batch: list[_Job]) -> None:
        """Send ``batch``, hand what queued meanwhile to its first job, wake the answered jobs."""
        results: list[tuple[dict[str, Any] | None, Exception | None]] | None = None
        try:
            results = self._propose(batch)
        except Exception as exc:  # a bug or a broken client: fail these jobs, keep serving
            results = [(None, exc)] * len(batch)
        finally:
            if results is None:  # interrupted (BaseException): still answer and pass the turn
                results = [(None, RuntimeError("the enqueue sender was interrupted"))] * len(batch)
            self._finish(batch, results)

    def _finish(
        self, batch: list[_Job], results: list[tuple[dict[str, Any] | None, Exception | None]]
    ) -> None:
        for job, (outcome, error) in zip(batch, results, strict=True):
            job.outcome, job.error, job.finished = outcome, error, True
        with self._lock:
            if self._queue:
                nxt = self._take()
                nxt[0].batch = nxt  # the turn moves on: _turns_taken is unchanged
            else:
                nxt = None
                self._turns_taken -= 1
        if nxt is not None:
            nxt[0].wake.release()
        for job in batch[1:]:  # batch[0] is this thread's own job
            job.wake.release()

    def _take(self) -> list[_Job]:
        """Take the first queued job and every job that fits behind it (under the lock)."""
        jobs = [self._queue.popleft()]
        n_tasks, n_bytes = len(jobs[0].tasks), jobs[0].body_bytes
        while self._queue:
            nxt = self._queue[0]
            if (n_tasks + len(nxt.tasks) > MAX_BATCH
                    or n_bytes + nxt.body_bytes > self._max_batch_bytes):
                break
            jobs.append(self._queue.popleft())
            n_tasks += len(nxt.tasks)
            n_bytes += nxt.body_bytes
        return jobs

    def _propose(
        self, jobs: list[_Job]
    ) -> list[tuple[dict[str, Any] | None, Exception | None]]:
        tasks = [task for job in jobs for task in job.tasks]
        try:
            outcome = self._client_of().command({"op": "enqueue", "tasks": tasks},
                                                timeout_ms=self._timeout_ms)
        except BadRequest as exc:
            if len(jobs) == 1:
                return [(None, exc)]
            # One job's tasks could not be encoded or were refused as malformed: retry each
            # alone, so that only the bad one fails (it is answered 400 by itself).
            return [self._propose([job])[0] for job in jobs]
        except RaftClientError as exc:
            return [(None, exc)] * len(jobs)
        self.commands_sent += 1
        if self._observe is not None:
            self._observe(len(tasks))
        if not outcome.get("ok"):
            if len(jobs) == 1:
                return [(outcome, None)]
            # One job's tasks were refused: retry each alone so that only it fails.
            return [self._propose([job])[0] for job in jobs]
        value = outcome["value"]
        results: list[tuple[dict[str, Any] | None, Exception | None]] = []
        start = 0
        for job in jobs:
            end = start + len(job.tasks)
            results.append(({"ok": True, "value": {
                "tasks": value["tasks"][start:end],
                "duplicates": value["duplicates"][start:end],
            }}, None))
            start = end
        return results
