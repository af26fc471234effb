"""The worker runtime's transport-neutral part: slots, held leases, handler threads, shutdown.

A runtime holds at most ``concurrency + prefetch`` leased tasks: ``concurrency`` handler threads
run them and up to ``prefetch`` wait in a local buffer. By default (``prefetch`` None) the buffer
is sized by time: at least ``concurrency`` tasks, and as many as the handlers finish in
``AUTO_BUFFER_S`` at their recent rate, at most ``MAX_AUTO_PREFETCH``; so slow handlers keep a
small buffer (other workers get the work) and fast ones get leases large enough that the cluster
spends one command on many tasks. Every held lease is extended when a third of it is left. A
subclass (``HttpRuntime``, ``ZmqRuntime``) moves tasks and verdicts over its transport in
``_drive``.

Hot path (what one task costs): the transport thread registers a leased batch and queues its
tasks under one lock hold; a handler thread takes a task, runs it, and in one further lock hold
records its verdict and takes the next task, so a busy handler thread never sleeps between tasks.

Shutdown: the first SIGTERM (or ``drain()``) stops leasing, releases the buffered tasks at once
(the ``release`` command: pending again, visible now, no attempt spent), and lets running handlers
finish for up to ``grace_ms``; whatever still runs then is nacked (an attempt it did use; its
result will be dropped). A second SIGTERM (or ``stop_now()``) stops at once: leases still held
expire by the visibility timeout, and count as attempts, as a crash's do.

Verdicts: a handler's return value is sent as the ack's result; a failure's reason and the last
lines of its traceback go with the nack (``app.run_handler``).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from types import FrameType

from dqueue.client.task import Task
from dqueue.logs import log_event
from dqueue.queue.results import DEFAULT_MAX_RESULT_BYTES
from dqueue.worker.app import Completion, TaskContext, Verdict, Worker, run_handler
from dqueue.worker.events import log_completion, log_task
from dqueue.worker.heartbeat import DEFAULT_HEARTBEAT_MS, Heartbeats

log = logging.getLogger("dqueue.worker")
#: The nack reason of a task whose handler still ran when the shutdown's grace period ended.
SHUTDOWN_REASON = "WorkerShutdown: the grace period ended before the handler returned"

AUTO_BUFFER_S = 0.1  # automatic prefetch: the work of this long at the handlers' recent rate
MAX_AUTO_PREFETCH = 100  # ... and at most this many buffered tasks (one lease request's maximum)
RATE_WINDOW_S = 0.1  # how often the handlers' rate is measured for the automatic prefetch


class State(StrEnum):
    """Life of a runtime: RUNNING leases; DRAINING finishes what it holds; STOPPED is done."""

    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"


@dataclass(frozen=True)
class RuntimeConfig:
    """Settings of one worker process.

    Attributes:
        worker_id: The id leases are held under.
        concurrency: Handler threads.
        prefetch: Leased tasks buffered beyond the running ones (None: automatic, from
            ``concurrency`` up to ``MAX_AUTO_PREFETCH`` for fast handlers).
        types: Task types to lease (empty: every type the Worker registered).
        queues: Queues to lease from (empty: the queue ``default``).
        lease_ms: Lease asked for, and given again by each extension.
        wait_ms: Long-poll wait of one lease request.
        grace_ms: How long a drain lets running handlers finish.
        request_timeout_ms: How long a request may go unanswered before it is sent again.
        max_result_bytes: Largest handler return value (compact JSON) sent as a result; a
            larger one, or one that is not JSON, fails the task (``InvalidResult``). The node
            checks its own ``api.max_result_bytes`` too: a result it refuses fails the task.
        heartbeat_ms: How often the worker says it is alive (``GET /workers``; heartbeat.py);
            0 sends no heartbeat.
    """

    worker_id: str
    concurrency: int = 4
    prefetch: int | None = None
    types: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    lease_ms: int = 30_000
    wait_ms: int = 5_000
    grace_ms: int = 30_000
    request_timeout_ms: int = 10_000
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    heartbeat_ms: int = DEFAULT_HEARTBEAT_MS

    @property
    def capacity(self) -> int:
        """Most leased tasks held at once (with automatic prefetch: the least of that most)."""
        prefetch = self.concurrency if self.prefetch is None else self.prefetch
        return self.concurrency + prefetch

    @property
    def max_capacity(self) -> int:
        """Most leased tasks ever held at once (automatic prefetch at its largest)."""
        if self.prefetch is not None:
            return self.capacity
        return self.concurrency + max(self.concurrency, MAX_AUTO_PREFETCH)


class Held:
    """A task this worker holds a lease on. ``expires_at`` is a local monotonic estimate.

    (A slotted class rather than a dataclass: one is built per leased task.)
    """

    __slots__ = ("expires_at", "extending", "finished", "lost", "running", "task")

    def __init__(self, task: Task, expires_at: float, finished: bool = False) -> None:
        self.task = task
        self.expires_at = expires_at
        self.running = False
        self.finished = finished  # its verdict was handed to the transport
        self.lost = False  # the lease passed to someone else: the result is dropped
        self.extending = False


@dataclass
class Counts:
    """What this runtime did, for logs and tests."""

    leased: int = 0
    acked: int = 0
    nacked: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    released: int = 0


class WorkerRuntime:
    """Base of the HTTP and ZeroMQ runtimes.

    Args:
        worker: The handler registry.
        config: Runtime settings.
    """

    transport = ""  # "http" or "zmq", for the logs

    def __init__(self, worker: Worker, config: RuntimeConfig) -> None:
        self.worker = worker
        self.config = config
        self.types = worker.types_for(config.types)
        self.counts = Counts()
        self.state = State.RUNNING
        self.heartbeats = Heartbeats(config.worker_id, config.concurrency, config.queues,
                                     self.types, config.heartbeat_ms)
        # One lock for everything below; ``_lock`` (notified when slots free up or tasks settle)
        # and ``_work_ready`` (handler threads waiting for a task) are conditions on it. It is
        # re-entrant because a signal handler (``drain``) may run while the main thread holds it.
        mutex = threading.RLock()
        self._lock = threading.Condition(mutex)
        self._work_ready = threading.Condition(mutex)
        self._held: dict[str, Held] = {}
        # Tasks whose verdict (or hand-back) was sent and awaits the server's answer: they no
        # longer take a slot, but a drain waits for them.
        self._settling: set[str] = set()
        self._work: deque[Task] = deque()
        self._closing = False  # handler threads exit once the work queue is empty
        # Automatic prefetch: the current bound on held tasks, and the rate it follows.
        self._capacity = config.capacity
        self._rate_per_s = 0.0
        self._rate_since = 0.0
        self._rate_finished = 0
        self._drain_deadline: float | None = None
        self._stop_now = threading.Event()
        self._threads: list[threading.Thread] = []
        self._signals = 0

    # -- public -----------------------------------------------------------------------

    def run(self) -> int:
        """Lease and run tasks until drained or stopped; returns a process exit code."""
        log_event(log, logging.INFO, "worker_started", worker_id=self.config.worker_id,
                  server=self.server_names(), transport=self.transport,
                  concurrency=self.config.concurrency, max_held=self.config.max_capacity,
                  prefetch=self.config.prefetch if self.config.prefetch is not None else "auto",
                  types=list(self.types), queues=list(self.config.queues) or ["default"])
        for i in range(self.config.concurrency):
            thread = threading.Thread(target=self._handler_loop, name=f"handler-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            self._drive()
        finally:
            with self._lock:
                self._closing = True
                self._work.clear()
                self._work_ready.notify_all()
            self.state = State.STOPPED
        if not self._stop_now.is_set():
            for thread in self._threads:
                thread.join(1.0)
        log_event(log, logging.INFO, "worker_stopped", worker_id=self.config.worker_id,
                  forced=self._stop_now.is_set(), **dataclasses.asdict(self.counts))
        return 1 if self._stop_now.is_set() else 0

    def drain(self) -> None:
        """Stop leasing; finish running tasks within ``grace_ms``; hand back the rest."""
        with self._lock:
            if self.state is State.RUNNING:
                self.state = State.DRAINING
                self._drain_deadline = time.monotonic() + self.config.grace_ms / 1000
                log_event(log, logging.INFO, "worker_draining",
                          worker_id=self.config.worker_id, grace_ms=self.config.grace_ms)
            self._lock.notify_all()
        self._wake()

    def stop_now(self) -> None:
        """Stop at once; held leases expire by the visibility timeout."""
        self._stop_now.set()
        self.drain()
        self._wake()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: the first drains, the second stops at once (main thread only)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def slots_used(self) -> int:
        """Leased tasks buffered or running (at most ``capacity``, or ``max_capacity`` with
        automatic prefetch); a task whose verdict was sent no longer counts."""
        with self._lock:
            return len(self._held)

    def held_count(self) -> int:
        """Leased tasks currently held (buffered, running, or awaiting their verdict's answer)."""
        with self._lock:
            return len(self._held) + len(self._settling)

    # -- for subclasses ---------------------------------------------------------------

    def server_names(self) -> list[str]:
        """The server's URLs or gateway endpoints, for the logs."""
        return []

    def _drive(self) -> None:
        """Move tasks and verdicts over the transport until done (runs on the calling thread)."""
        raise NotImplementedError

    def _send_completion(self, completion: Completion) -> None:
        """Called on a handler thread, without the lock, when a run ends with a verdict to send
        (already counted). Transports that queue verdicts override ``_post_completion``."""
        raise NotImplementedError

    def _post_completion(self, completion: Completion) -> bool:
        """Called on a handler thread *with the lock held* for a verdict to send: True if the
        transport took it (queued for its own thread, without blocking); False to have
        ``_send_completion`` called after the lock is released."""
        return False

    def _send_extend(self, task: Task, lease_s: float | None) -> None:
        """Called on a handler thread by ``ctx.extend``."""
        raise NotImplementedError

    def _wake(self) -> None:
        """Make ``_drive`` look at the state now (subclasses with a blocking loop override)."""

    def _free_slots(self) -> int:
        with self._lock:
            return self._capacity - len(self._held)

    def _maybe_tune_capacity(self, now: float) -> None:
        """Automatic prefetch: every ``RATE_WINDOW_S``, set the bound on held tasks to
        ``concurrency`` plus the work of ``AUTO_BUFFER_S`` at the handlers' recent rate (which
        rises at once and halves at most per window when the handlers slow down)."""
        config = self.config
        if config.prefetch is not None or now - self._rate_since < RATE_WINDOW_S:
            return
        counts = self.counts
        with self._lock:
            finished = counts.acked + counts.nacked + counts.dead_lettered + counts.dropped
        if self._rate_since:
            window_rate = (finished - self._rate_finished) / (now - self._rate_since)
            self._rate_per_s = max(window_rate, self._rate_per_s / 2)
            buffer = min(MAX_AUTO_PREFETCH, int(self._rate_per_s * AUTO_BUFFER_S))
            self._capacity = config.concurrency + max(config.concurrency, buffer)
        self._rate_since, self._rate_finished = now, finished

    def _accept(self, tasks: list[Task]) -> list[Task]:
        """Take leased tasks: queue them to run, or return them to hand back when not RUNNING."""
        if not tasks:
            return []
        expires_at = time.monotonic() + self.config.lease_ms / 1000
        with self._lock:
            self.counts.leased += len(tasks)
            held = self._held
            if self.state is not State.RUNNING:
                for task in tasks:
                    held[task.id] = Held(task, expires_at, finished=True)
                return tasks
            for task in tasks:
                held[task.id] = Held(task, expires_at)
            self._work.extend(tasks)
            self._work_ready.notify()  # one thread; each one woken wakes the next (below)
        for task in tasks:
            log_task("task_leased", task)
        return []

    def _accept_finished(self, tasks: list[Task]) -> list[Task]:
        """Take leased tasks only to hand them back; returns them."""
        with self._lock:
            for task in tasks:
                self.counts.leased += 1
                self._held[task.id] = Held(task, time.monotonic(), finished=True)
        return tasks

    def _settle(self, task_id: str) -> None:
        """The task's verdict or hand-back is being sent: its slot is free again."""
        with self._lock:
            if self._held.pop(task_id, None) is not None:
                self._settling.add(task_id)
            self._lock.notify_all()

    def _forget(self, task_id: str) -> None:
        """The task's verdict or hand-back was answered (or given up on)."""
        with self._lock:
            self._held.pop(task_id, None)
            self._settling.discard(task_id)
            self._lock.notify_all()

    def _forget_many(self, task_ids: list[str]) -> None:
        """``_forget`` of several tasks under one lock hold."""
        with self._lock:
            held, settling = self._held, self._settling
            for task_id in task_ids:
                held.pop(task_id, None)
                settling.discard(task_id)
            self._lock.notify_all()

    def _due_for_extension(self, now: float) -> list[Task]:
        """Held tasks whose lease has a third or less left and no extension in flight."""
        margin = self.config.lease_ms / 3000
        due: list[Task] = []
        with self._lock:
            for held in self._held.values():
                if (not held.finished and not held.lost and not held.extending
                        and held.expires_at - now <= margin):
                    held.extending = True
                    due.append(held.task)
        return due

    def _extended(
        self, task_id: str, sent_at: float, ok: bool, lost: bool = False,
        lease_s: float | None = None,
    ) -> None:
        """An extension was answered: ``ok`` moves the local expiry to ``lease_s`` (the
        configured lease when None) after ``sent_at``; ``lost`` marks the lease lost."""
        with self._lock:
            held = self._held.get(task_id)
            if held is None:
                return
            held.extending = False
            if ok:
                held.expires_at = sent_at + (lease_s or self.config.lease_ms / 1000)
            if lost and not held.lost:
                held.lost = True
                log_task("lease_lost", held.task, logging.WARNING,
                         detail="another worker holds it now")

    def _is_lost(self, task_id: str) -> bool:
        with self._lock:
            held = self._held.get(task_id)
            return bool(held and held.lost)

    def _to_release(self, now: float) -> list[tuple[Task, bool]]:
        """In a drain: buffered tasks at once, running ones after the grace period; each with
        whether it started (a started one is nacked with ``SHUTDOWN_REASON``, not released)."""
        if self.state is State.RUNNING:
            return []
        out: list[tuple[Task, bool]] = []
        with self._lock:
            grace_over = self._drain_deadline is not None and now >= self._drain_deadline
            for held in self._held.values():
                if held.finished or (held.running and not grace_over):
                    continue
                held.finished = True
                if held.running:
                    held.lost = True  # its handler's result will be dropped
                out.append((held.task, held.running))
        return out

    def _is_drained(self) -> bool:
        with self._lock:
            return self.state is not State.RUNNING and not self._held and not self._settling

    def _count_locked(self, verdict: Verdict) -> None:
        counts = self.counts
        if verdict is Verdict.ACK:
            counts.acked += 1
        elif verdict is Verdict.NACK:
            counts.nacked += 1
        elif verdict is Verdict.DEAD_LETTER:
            counts.dead_lettered += 1
        else:
            counts.dropped += 1

    # -- internals --------------------------------------------------------------------

    def _handler_loop(self) -> None:
        worker, worker_id = self.worker, self.config.worker_id
        max_result_bytes = self.config.max_result_bytes
        work, held_tasks = self._work, self._held
        extend, is_lost = self._send_extend, self._is_lost
        completion: Completion | None = None
        while True:
            to_send = None
            with self._lock:
                if completion is not None:
                    if not self._finish_locked(completion):
                        to_send = completion
                    completion = None
                task = None
                if to_send is None:
                    # Take the next task in the same lock hold: no sleep between tasks.
                    while not work and not self._closing:
                        self._work_ready.wait()
                    if not work:
                        break
                    task = work.popleft()
                    if work:
                        # Chained wake-up: another idle thread only while tasks are left when
                        # this one starts. Fast handlers then run the batch on the few threads
                        # already awake instead of waking every thread for a task or two.
                        self._work_ready.notify()
                    held = held_tasks.get(task.id)
                    if held is None or held.finished:
                        continue  # handed back during a drain before it started
                    held.running = True
            if to_send is not None:
                self._send_completion(to_send)
                continue
            assert task is not None
            ctx = TaskContext(task, worker_id, extend, is_lost)
            started = time.monotonic()
            completion = run_handler(worker, ctx, check_lost=False,
                                     max_result_bytes=max_result_bytes)
            log_completion(completion, (time.monotonic() - started) * 1000)

    def _finish_locked(self, completion: Completion) -> bool:
        """Record the end of a run (lock held). Returns False when the verdict still has to
        go through ``_send_completion``; True when it was dropped or taken by the transport."""
        task = completion.task
        held = self._held.get(task.id)
        if held is None or held.finished or held.lost:
            if held is not None and held.lost and not held.finished:
                log_task("lease_lost", task, logging.WARNING,
                         detail=f"lost while running; its {completion.verdict.value} dropped")
            # Handed back after the grace period, or the lease passed to another worker. A
            # hand-back in flight is in _settling and stays there until answered.
            self._count_locked(Verdict.DROP)
            self._held.pop(task.id, None)
            self._lock.notify_all()
            return True
        held.running = False
        held.finished = True
        if completion.verdict is Verdict.DROP:
            self._count_locked(Verdict.DROP)
            self._held.pop(task.id, None)
            self._lock.notify_all()
            return True
        self._count_locked(completion.verdict)
        return self._post_completion(completion)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            log_event(log, logging.INFO, "signal", signum=signum,
                      detail="draining; send it again to stop at once")
            self.drain()
        else:
            log_event(log, logging.WARNING, "signal", signum=signum, detail="again: stopping now")
            self.stop_now()


def backoff_s(attempt: int, base_s: float = 0.05, cap_s: float = 2.0) -> float:
    """Capped exponential pause before retry number ``attempt`` (no jitter: one worker)."""
    return min(cap_s, base_s * (2 ** attempt))

