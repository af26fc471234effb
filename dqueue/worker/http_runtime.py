"""The worker runtime over the REST API: long-poll leasing, acks from the handler threads.

Threads: the calling thread leases (one long poll at a time, for as many tasks as there are free
slots); each handler thread acks or nacks its own task on its own keep-alive connection; one
extender thread extends leases that are running out and hands tasks back during a drain; one
heartbeat thread says every ``heartbeat_ms`` that the worker is alive (``GET /workers``), and
that it leaves when the runtime stops (heartbeat.py).
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
    Unavailable,
)
from dqueue.client.http_client import Client, RetryPolicy
from dqueue.client.task import Task
from dqueue.worker.app import Completion, Verdict, Worker, invalid_result_reason
from dqueue.worker.events import Reachability, log_task
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
# A lease request gives up retrying after this long, so that a server that cannot be reached is
# logged within 2 s (the loop then asks again with its own backoff).
LEASE_RETRY_DEADLINE_S = 1.0


class HttpRuntime(WorkerRuntime):
    """Runs a Worker's handlers against a dqueue node (or several) over HTTP.

    Args:
        worker: The handler registry.
        config: Runtime settings.
        servers: Node URLs.
        token: Bearer token (default ``$DQUEUE_TOKEN``); it needs the ``consume`` role.
        ca_file: CA of an ``https://`` proxy's certificate (default: the system's CAs).
    """

    transport = "http"

    def __init__(self, worker: Worker, config: RuntimeConfig, servers: Sequence[str],
                 token: str | None = None, ca_file: str | None = None) -> None:
        super().__init__(worker, config)
        retry = RetryPolicy(deadline_s=config.request_timeout_ms / 1000)
        self.client = Client(list(servers), worker_id=config.worker_id, retry=retry,
                             token=token, ca_file=ca_file)
        self._lease_client = Client(list(servers), worker_id=config.worker_id,
                                    retry=RetryPolicy(deadline_s=LEASE_RETRY_DEADLINE_S),
                                    token=token, ca_file=ca_file)
        self.reachability = Reachability(self.client.servers, self.transport)
        self._extender_done = threading.Event()
        self._beat_failing = False

    def server_names(self) -> list[str]:
        return self.client.servers

    def _drive(self) -> None:
        extender = threading.Thread(target=self._extend_loop, name="extender", daemon=True)
        extender.start()
        beater = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        if self.heartbeats.enabled:
            beater.start()
        try:
            self._lease_loop()
            self._wait_drained()
        finally:
            self._extender_done.set()
            extender.join(2.0)
            if beater.is_alive():
                beater.join(2.0)
            if self.heartbeats.sent and not self._beat_failing and not self._stop_now.is_set():
                self._beat(leaving=True)
            self.client.close()
            self._lease_client.close()

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
                tasks = self._lease_client.lease_many(min(free, 100), types=self.types,
                                               queues=self.config.queues or None,
                                               lease_seconds=self.config.lease_ms / 1000,
                                               wait_seconds=wait_s)
            except (Unauthorized, Forbidden) as exc:
                # Retrying cannot help: the token is missing, unknown or lacks consume.
                log.error("the node refused this worker: %s", exc)
                self.stop_now()
                break
            except Unavailable as exc:
                # The client has retried with backoff for LEASE_RETRY_DEADLINE_S: ask again at
                # once, so that the warnings keep to their schedule.
                self.reachability.failed(time.monotonic(), str(exc))
                continue
            except DQueueError as exc:
                self.reachability.reached(time.monotonic())
                log.warning("lease failed: %s", exc)
                with self._lock:
                    self._lock.wait_for(lambda: self.state is not State.RUNNING,
                                        backoff_s(attempt))
                attempt += 1
                continue
            attempt = 0
            self.reachability.reached(time.monotonic())
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

    def _heartbeat_loop(self) -> None:
        beats = self.heartbeats
        while not self._extender_done.is_set() and not self._stop_now.is_set():
            if self.state is State.RUNNING and beats.is_due(time.monotonic()):
                self._beat()
            self._extender_done.wait(EXTENDER_TICK_S)

    def _beat(self, leaving: bool = False) -> None:
        """Send one heartbeat; a failure is logged when heartbeats start failing."""
        body = self.heartbeats.body(self.held_count(), time.monotonic())
        try:
            self.client.heartbeat(
                worker_id=body["worker_id"], host=body["host"], pid=body["pid"],
                queues=body["queues"], types=body["types"], concurrency=body["concurrency"],
                in_flight=body["in_flight"], started_at_ms=body["started_at_ms"],
                heartbeat_seconds=body["heartbeat_ms"] / 1000, leaving=leaving)
            self._beat_failing = False
        except DQueueError as exc:
            if not self._beat_failing:
                log.warning("heartbeat failed (GET /workers may not list this worker): %s", exc)
            self._beat_failing = True

    def _release(self, task: Task) -> None:
        """Hand back a task that did not start: pending at once, no attempt spent."""
        self._settle(task.id)
        try:
            self.client.release(task)
            with self._lock:
                self.counts.released += 1
            log_task("task_released", task)
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
