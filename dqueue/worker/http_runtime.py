"""The worker runtime over the REST API: long-poll leasing, acks from the handler threads.

Threads: the calling thread leases (one long poll at a time, for as many tasks as there are free
slots); each handler thread acks or nacks its own task on its own keep-alive connection; one
extender thread extends leases that are running out and hands tasks back during a drain.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from dqueue.client.errors import (
    DQueueError,
    Forbidden,
    InvalidRequest,
    LeaseConflict,
    Unauthorized,
)
from dqueue.client.http_client import Client, RetryPolicy
from dqueue.client.task import Task
from dqueue.worker.app import Completion, Verdict, Worker, invalid_result_reason
from dqueue.worker.runtime import (
    SHUTDOWN_REASON,
    RuntimeConfig,
    State,
    WorkerRuntime,
    backoff_s,
)

log = logging.getLogger("dqueue.worker")

MAX_HTTP_WAIT_MS = 2_000  # a shorter long poll keeps a drain prompt
EXTENDER_TICK_S = 0.05


class HttpRuntime(WorkerRuntime):
    """Runs a Worker's handlers against a dqueue node (or several) over HTTP.

    Args:
        worker: The handler registry.
        config: Runtime settings.
        servers: Node URLs.
        token: Bearer token (default ``$DQUEUE_TOKEN``); it needs the ``consume`` role.
        ca_file: CA of an ``https://`` proxy's certificate (default: the system's CAs).
    """

    def __init__(self, worker: Worker, config: RuntimeConfig, servers: Sequence[str],
                 token: str | None = None, ca_file: str | None = None) -> None:
        super().__init__(worker, config)
        retry = RetryPolicy(deadline_s=config.request_timeout_ms / 1000)
        self.client = Client(list(servers), worker_id=config.worker_id, retry=retry,
                             token=token, ca_file=ca_file)
        self._extender_done = threading.Event()

    def _drive(self) -> None:
        extender = threading.Thread(target=self._extend_loop, name="extender", daemon=True)
        extender.start()
        try:
            self._lease_loop()
            self._wait_drained()
        finally:
            self._extender_done.set()
            extender.join(2.0)
            self.client.close()

    def _lease_loop(self) -> None:
        attempt = 0
        wait_s = min(self.config.wait_ms, MAX_HTTP_WAIT_MS) / 1000
        while self.state is State.RUNNING:
            free = self._free_slots()
            if free <= 0:
                with self._lock:
                    self._lock.wait_for(lambda: self.state is not State.RUNNING
                                        or len(self._held) < self._capacity, 0.5)
                continue
            try:
                tasks = self.client.lease_many(min(free, 100), types=self.types,
                                               queues=self.config.queues or None,
                                               lease_seconds=self.config.lease_ms / 1000,
                                               wait_seconds=wait_s)
            except (Unauthorized, Forbidden) as exc:
                # Retrying cannot help: the token is missing, unknown or lacks consume.
                log.error("the node refused this worker: %s", exc)
                self.stop_now()
                break
            except DQueueError as exc:
                log.warning("lease failed: %s", exc)
                with self._lock:
                    self._lock.wait_for(lambda: self.state is not State.RUNNING,
                                        backoff_s(attempt))
                attempt += 1
                continue
            attempt = 0
            for task in self._accept(tasks):
                self._release(task)

    def _wait_drained(self) -> None:
        while not self._stop_now.is_set() and not self._is_drained():
            with self._lock:
                self._lock.wait(0.05)

    def _extend_loop(self) -> None:
        client = self.client
        while not self._extender_done.is_set() and not self._stop_now.is_set():
            now = time.monotonic()
            self._maybe_tune_capacity(now)
            for task, started in self._to_release(now):
                if started:
                    self._nack_unfinished(task)
                else:
                    self._release(task)
            for task in self._due_for_extension(now):
                try:
                    client.extend(task, self.config.lease_ms / 1000)
                    self._extended(task.id, now, ok=True)
                except LeaseConflict:
                    self._extended(task.id, now, ok=False, lost=True)
                except DQueueError as exc:
                    log.warning("extend of %s failed: %s", task.id, exc)
                    self._extended(task.id, now, ok=False)
            self._extender_done.wait(EXTENDER_TICK_S)

    def _release(self, task: Task) -> None:
        """Hand back a task that did not start: pending at once, no attempt spent."""
        self._settle(task.id)
        try:
            self.client.release(task)
            with self._lock:
                self.counts.released += 1
            log.info("task_released task_id=%s type=%s attempt=%d", task.id, task.type,
                     task.attempts)
        except DQueueError as exc:
            log.warning("release of %s failed (its lease will expire): %s", task.id, exc)
        self._forget(task.id)

    def _nack_unfinished(self, task: Task) -> None:
        """Fail a task whose handler outlived the shutdown's grace period."""
        self._settle(task.id)
        try:
            self.client.nack(task, SHUTDOWN_REASON)
        except DQueueError as exc:
            log.warning("nack of %s failed (its lease will expire): %s", task.id, exc)
        self._forget(task.id)

    def _send_completion(self, completion: Completion) -> None:
        task = completion.task
        self._settle(task.id)
        try:
            if completion.verdict is Verdict.ACK:
                self._ack(task, completion.result)
            else:
                self.client.nack(task, completion.reason, traceback=completion.traceback,
                                 dead_letter=completion.verdict is Verdict.DEAD_LETTER,
                                 retry_delay=completion.retry_delay)
        except LeaseConflict as exc:
            log.warning("task %s: lease lost, %s dropped: %s", task.id,
                        completion.verdict.value, exc.message)
        except DQueueError as exc:
            log.warning("task %s: %s not delivered (the lease will expire): %s", task.id,
                        completion.verdict.value, exc)
        self._forget(task.id)

    def _ack(self, task: Task, result: object) -> None:
        """Ack with the result; one the node refuses (over its own ``api.max_result_bytes``)
        fails the task with the node's reason instead."""
        try:
            self.client.ack(task, result=result)
        except InvalidRequest as exc:
            if exc.field != "result":
                raise
            log.warning("task %s: result refused by the node: %s", task.id, exc.message)
            with self._lock:
                self.counts.acked -= 1
                self.counts.nacked += 1
            self.client.nack(task, invalid_result_reason(exc.message))

    def _send_extend(self, task: Task, lease_s: float | None) -> None:
        now = time.monotonic()
        try:
            self.client.extend(task, lease_s or self.config.lease_ms / 1000)
            self._extended(task.id, now, ok=True, lease_s=lease_s)
        except LeaseConflict:
            self._extended(task.id, now, ok=False, lost=True)
        except DQueueError as exc:
            log.warning("extend of %s failed: %s", task.id, exc)
