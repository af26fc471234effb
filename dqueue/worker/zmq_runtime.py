"""The worker runtime over the ZeroMQ worker gateway: one I/O thread, pipelined requests.

The thread calling ``run`` owns the DEALER to the gateway. Handler threads never touch it: they
append verdicts to an outbox under the runtime's lock and wake the I/O thread by writing one byte
to a pipe it polls, only when no wake-up is pending since it last emptied the outbox. The I/O
thread sends all the acks it finds there as one ``ack_many`` message (the other verdicts one by
one), keeps up to two lease requests in flight for the free slots (never asking for more than are
free), sends extensions and hand-backs without waiting for their answers (matching answers by
request id), and sends again what went unanswered for ``request_timeout_ms``. Lease extensions,
resends and heartbeats are looked at every ``HOUSEKEEPING_S``, not on every turn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from dqueue.client.errors import (
    Forbidden,
    LeaseConflict,
    NoLeader,
    TaskNotFound,
    Unauthorized,
    Unavailable,
)
from dqueue.client.task import Task
from dqueue.client.worker_keys import WorkerKeys
from dqueue.client.zmq_client import Reply, ZmqWorkerClient
from dqueue.protocol.errors import ErrorCode
from dqueue.queue.results import result_bytes
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

HOUSEKEEPING_S = 0.05  # how often extensions, resends and gateway silence are looked at
MAX_LEASES = 2  # lease requests in flight at once
MAX_ACKS_PER_MESSAGE = 1_000  # the gateway's limit on the items of one ack_many
# Results of one ack_many at most (compact JSON): far under the gateway's 4 MiB message bound.
MAX_ACK_MANY_RESULT_BYTES = 1 << 20
# No reply at all (not even the pong of a heartbeat, sent each HEARTBEAT_MS) for this long with
# requests waiting: the gateway cannot be reached (logged within 2 s of it, then every 10 s).
UNREACHABLE_SILENCE_S = 1.5
GATEWAY_SILENCE_S = 5.0  # no reply at all for this long, with requests waiting: try the next
LEASE_SETTLE_S = 0.2  # after bye, how long a lease answer already sent may take to arrive


@dataclass
class Request:
    """A request in flight: ``op`` is ack, ack_many, nack, dead_letter, extend or release;
    ``tasks`` has one task except for ack_many; ``results`` (acks) the result of each task,
    ``traceback`` (nacks) the failure's last lines."""

    op: str
    tasks: list[Task]
    sent_at: float
    reason: str = ""
    lease_s: float | None = None
    attempt: int = 0
    results: list[Any] | None = None
    traceback: str | None = None
    retry_delay: float | None = None  # nacks: seconds instead of the queue's backoff


class ZmqRuntime(WorkerRuntime):
    """Runs a Worker's handlers against a node's worker gateway.

    With several gateways, the runtime talks to one at a time and moves to the next when the
    current one has answered nothing (not even a heartbeat) for ``gateway_silence_s`` while
    requests were waiting; unanswered verdicts are sent again to the new one.

    Args:
        worker: The handler registry.
        config: Runtime settings.
        endpoints: Gateway addresses (``tcp://127.0.0.1:9191``), one or several.
        context: The ZeroMQ context (the process-wide one when None).
        gateway_silence_s: Silence after which the next gateway is tried.
        keys: Endpoint -> CURVE keys for gateways that authenticate workers (an endpoint
            missing here connects without keys). A refused handshake stops the runtime with
            the reason logged (exit status 1).
    """

    transport = "zmq"

    def __init__(
        self,
        worker: Worker,
        config: RuntimeConfig,
        endpoints: str | Sequence[str],
        context: zmq.Context | None = None,
        gateway_silence_s: float = GATEWAY_SILENCE_S,
        keys: dict[str, WorkerKeys] | None = None,
    ) -> None:
        super().__init__(worker, config)
        self._gateway_silence_s = gateway_silence_s
        self.endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not self.endpoints:
            raise ValueError("at least one gateway address is needed")
        self._endpoint_index = 0
        self.keys = dict(keys or {})  # endpoint -> the CURVE keys to use with it
        self._ctx = context or zmq.Context.instance()
        # Shared with handler threads, under the runtime's lock.
        self._outbox: list[Completion] = []
        self._extends: list[tuple[Task, float | None]] = []
        self._wake_pending = False
        self._wake_closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._driver_ident: int | None = None
        # I/O-thread state, set up by _drive/_connect.
        self._client: ZmqWorkerClient | None = None
        self._pending: dict[object, Request] = {}
        self._leases: dict[object, tuple[int, float]] = {}  # rid -> (tasks asked, sent at)
        self._retries: list[tuple[float, Request]] = []
        self._last_heard = 0.0
        self._ack_many = True  # False while the gateway does not know ack_many (an older one)
        self._beat_rid: object = None  # the last heartbeat's request id (heartbeat.py)
        self._beat_failing = False
        self.reachability = Reachability(self.endpoints, self.transport)
        self._last_reply_at = 0.0  # the last reply read (not reset by a new connection)

    def server_names(self) -> list[str]:
        return list(self.endpoints)

    # -- handler-thread side ----------------------------------------------------------

    def _post_completion(self, completion: Completion) -> bool:
        # Lock held: the verdict's slot is free from now on, the I/O thread sends it.
        task_id = completion.task.id
        if self._held.pop(task_id, None) is not None:
            self._settling.add(task_id)
        self._outbox.append(completion)
        self._lock.notify_all()
        self._wake_locked()
        return True

    def _send_completion(self, completion: Completion) -> None:
        raise AssertionError("ZmqRuntime queues every verdict in _post_completion")

    def _send_extend(self, task: Task, lease_s: float | None) -> None:
        with self._lock:
            self._extends.append((task, lease_s))
            self._wake_locked()

    def _wake_locked(self) -> None:
        """Wake the I/O thread unless a wake-up is pending since it last read the outbox
        (lock held)."""
        if self._wake_pending or self._wake_closed:
            return
        if threading.get_ident() == self._driver_ident:
            return  # the I/O thread looks at its state on every turn anyway
        self._wake_pending = True
        with contextlib.suppress(BlockingIOError):  # full: wake-ups are waiting already
            os.write(self._wake_w, b"\0")

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False  # a state change: wake even if verdicts are waiting
            self._wake_locked()

    # -- I/O thread -------------------------------------------------------------------

    def _drive(self) -> None:
        self._driver_ident = threading.get_ident()
        poller = zmq.Poller()
        poller.register(self._wake_r, zmq.POLLIN)
        client = self._connect(poller, time.monotonic())
        self._next_lease_at = 0.0
        self._lease_attempt = 0
        bye_sent = False
        bye_at = 0.0
        next_housekeeping = 0.0
        housekeeping_s = min(HOUSEKEEPING_S, self.config.lease_ms / 10_000)
        try:
            while not self._stop_now.is_set():
                now = time.monotonic()
                self._read_outbox(now)
                if self.state is not State.RUNNING:
                    if not bye_sent:
                        # The gateway drops our waiting lease and hands back what its slice
                        # in flight leases; an answer already on its way is still read below.
                        with contextlib.suppress(Unavailable):
                            if self.heartbeats.sent:  # leave GET /workers now
                                client.send_worker_heartbeat(
                                    self.heartbeats.body(self.held_count(), now), leaving=True)
                            client.send_bye()
                        bye_sent, bye_at = True, now
                    for task, started in self._to_release(now):
                        if started:  # outlived the grace period: an attempt it did use
                            self._settle(task.id)
                            self._request("nack", [task], now, reason=SHUTDOWN_REASON)
                        else:
                            self._request("release", [task], now)
                    lease_settled = not self._leases or now - bye_at > LEASE_SETTLE_S
                    if (self._is_drained() and not self._pending and not self._retries
                            and lease_settled):
                        break
                else:
                    self._maybe_lease(now)
                if now >= next_housekeeping:
                    next_housekeeping = now + housekeeping_s
                    self._maybe_tune_capacity(now)
                    for task in self._due_for_extension(now):
                        self._request("extend", [task], now,
                                      lease_s=self.config.lease_ms / 1000)
                    self._resend_due(now)
                    try:
                        client.check_handshake()
                    except Unauthorized as exc:
                        # Retrying cannot help: the keys (or their absence) are refused.
                        log.error("the worker gateway refused this worker: %s", exc)
                        self.stop_now()
                        break
                    self._check_reachable(now)
                    if self._is_gateway_silent(now):
                        client.close_socket()
                        self._endpoint_index = (self._endpoint_index + 1) % len(self.endpoints)
                        client = self._connect(poller, now)
                    if not bye_sent:
                        with contextlib.suppress(Unavailable):
                            if self.heartbeats.is_due(now):
                                self._beat_rid = client.send_worker_heartbeat(
                                    self.heartbeats.body(self.held_count(), now))
                            client.maybe_heartbeat()
                # Until the next housekeeping (at most HOUSEKEEPING_S away), or a wake-up.
                timeout_ms = max(0, int((next_housekeeping - now) * 1000) + 1)
                events = dict(poller.poll(timeout_ms))
                if self._wake_r in events:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                if client.socket in events:
                    heard = False
                    while (reply := client.recv_nowait()) is not None:
                        heard = True
                        self._handle_reply(reply, time.monotonic())
                    if heard:
                        self._last_heard = self._last_reply_at = time.monotonic()
        finally:
            if not bye_sent:
                client.close()
            else:
                client.close_socket()
            with self._lock:  # no handler thread writes to the pipe after this
                self._wake_closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _connect(self, poller: zmq.Poller, now: float) -> ZmqWorkerClient:
        """Connect to the current gateway; requests left unanswered by a previous one are sent
        again (ack and nack by the same worker are idempotent), its lease requests forgotten."""
        old = self._client
        if old is not None:
            poller.unregister(old.socket)
            log.warning("gateway %s silent; moving to %s", old.endpoint,
                        self.endpoints[self._endpoint_index])
        endpoint = self.endpoints[self._endpoint_index]
        client = ZmqWorkerClient(endpoint, worker_id=self.config.worker_id, context=self._ctx,
                                 keys=self.keys.get(endpoint))
        poller.register(client.socket, zmq.POLLIN)
        self._client = client
        self._ack_many = True  # a new gateway may know ack_many
        self._last_heard = now
        pending = list(self._pending.values())
        self._pending = {}
        self._leases = {}
        self._retries += [(now, req) for req in pending if req.op != "extend"]
        for req in pending:
            if req.op == "extend":
                self._extended(req.tasks[0].id, req.sent_at, ok=False)
        return client

    def _check_reachable(self, now: float) -> None:
        """Log when the gateway has been silent ``UNREACHABLE_SILENCE_S`` with requests
        waiting, and when it answers again."""
        down_since = self.reachability.down_since
        if down_since is not None and self._last_reply_at > down_since:
            self.reachability.reached(now)
        elif now - self._last_heard > UNREACHABLE_SILENCE_S and (self._pending or self._leases):
            assert self._client is not None
            self.reachability.failed(
                now, f"{self._client.endpoint}: no answer for {now - self._last_heard:.1f} s")

    def _is_gateway_silent(self, now: float) -> bool:
        waiting = self._pending or self._leases
        return (len(self.endpoints) > 1 and bool(waiting)
                and now - self._last_heard > self._gateway_silence_s)

    def _read_outbox(self, now: float) -> None:
        """Send the verdicts and extension requests the handler threads left."""
        with self._lock:
            self._wake_pending = False
            if not self._outbox and not self._extends:
                return
            outbox, self._outbox = self._outbox, []
            extends, self._extends = self._extends, []
        acks: list[Task] = []
        results: list[Any] = []
        for completion in outbox:
            if completion.verdict is Verdict.ACK:
                acks.append(completion.task)
                results.append(completion.result)
            else:
                op = "nack" if completion.verdict is Verdict.NACK else "dead_letter"
                self._request(op, [completion.task], now, reason=completion.reason,
                              traceback=completion.traceback,
                              retry_delay=completion.retry_delay)
        self._send_acks(acks, results, now)
        for task, lease_s in extends:
            self._request("extend", [task], now, lease_s=lease_s)

    def _send_acks(self, tasks: list[Task], results: list[Any], now: float,
                   attempt: int = 0) -> None:
        """Send acks as ``ack_many`` messages of at most MAX_ACKS_PER_MESSAGE acks and about
        MAX_ACK_MANY_RESULT_BYTES of results (a lone ack as ``ack``)."""
        start = 0
        while start < len(tasks):
            end, size = start, 0
            while end < len(tasks) and end - start < MAX_ACKS_PER_MESSAGE and (
                    end == start or size < MAX_ACK_MANY_RESULT_BYTES):
                if results[end] is not None:
                    size += result_bytes(results[end])
                end += 1
            if self._ack_many and end - start > 1:
                self._request("ack_many", tasks[start:end], now, attempt=attempt,
                              results=results[start:end])
            else:
                for index in range(start, end):
                    self._request("ack", [tasks[index]], now, attempt=attempt,
                                  results=[results[index]])
            start = end

    def _maybe_lease(self, now: float) -> None:
        """Ask for the free slots not already asked for: at most MAX_LEASES requests in flight,
        and a second one only for a quarter of the capacity or more (no trickle of tiny leases).
        """
        if len(self._leases) >= MAX_LEASES or now < self._next_lease_at:
            return
        free = self._free_slots() - sum(asked for asked, _ in self._leases.values())
        if free <= 0 or (self._leases and free < max(1, self._capacity // 4)):
            return
        asked = min(free, 100)
        assert self._client is not None
        try:
            rid = self._client.send_lease(asked, types=self.types,
                                          queues=self.config.queues or None,
                                          lease_ms=self.config.lease_ms,
                                          wait_ms=self.config.wait_ms)
        except Unavailable:
            self._next_lease_at = now + backoff_s(self._lease_attempt)
            self._lease_attempt += 1
            return
        self._leases[rid] = (asked, now)

    def _request(
        self, op: str, tasks: list[Task], now: float, *, reason: str = "",
        lease_s: float | None = None, attempt: int = 0, results: list[Any] | None = None,
        traceback: str | None = None, retry_delay: float | None = None,
    ) -> None:
        client = self._client
        assert client is not None
        task = tasks[0]
        if op == "release":
            self._settle(task.id)
        try:
            if op == "ack_many":
                rid = client.send_ack_many(tasks, results)
            elif op == "ack":
                rid = client.send_ack(task, results[0] if results else None)
            elif op in ("nack", "dead_letter"):
                rid = client.send_nack(task, reason, dead_letter=op == "dead_letter",
                                       traceback=traceback, retry_delay=retry_delay)
            elif op == "release":
                rid = client.send_release(task)
            else:
                rid = client.send_extend(task, None if lease_s is None
                                         else max(1, int(lease_s * 1000)))
        except Unavailable:
            req = Request(op, tasks, now, reason, lease_s, attempt, results, traceback,
                          retry_delay)
            if op == "extend":
                self._extended(task.id, now, ok=False)
            else:
                self._retries.append((now + backoff_s(attempt), req))
            return
        self._pending[rid] = Request(op, tasks, now, reason, lease_s, attempt, results,
                                     traceback, retry_delay)

    def _resend_due(self, now: float) -> None:
        timeout_s = self.config.request_timeout_ms / 1000
        for rid, (_, sent_at) in list(self._leases.items()):
            if now - sent_at > timeout_s + self.config.wait_ms / 1000:
                log.warning("lease request unanswered; asking again")
                del self._leases[rid]
        for rid, req in list(self._pending.items()):
            if now - req.sent_at > timeout_s:
                del self._pending[rid]
                if req.op == "extend":
                    self._extended(req.tasks[0].id, req.sent_at, ok=False)
                else:
                    self._retries.append((now, req))
        if self._retries:
            due = [r for t, r in self._retries if t <= now]
            self._retries = [(t, r) for t, r in self._retries if t > now]
            for req in due:
                if req.op in ("ack", "ack_many"):
                    self._send_acks(req.tasks, _results_of(req), now, attempt=req.attempt + 1)
                else:
                    self._request(req.op, req.tasks, now, reason=req.reason,
                                  lease_s=req.lease_s, attempt=req.attempt + 1,
                                  traceback=req.traceback, retry_delay=req.retry_delay)

    def _handle_reply(self, reply: Reply, now: float) -> None:
        if reply.rid is not None and reply.rid == self._beat_rid:
            if reply.error is not None and not self._beat_failing:
                log.warning("heartbeat refused (GET /workers may not list this worker): %s",
                            reply.error)
            if getattr(reply.error, "code", None) == ErrorCode.UNKNOWN_KIND:
                self.heartbeats.heartbeat_ms = 0  # an older gateway: stop sending them
            self._beat_failing = reply.error is not None  # logged when failures start
            return
        if reply.rid is not None and reply.rid in self._leases:
            del self._leases[reply.rid]
            if reply.error is not None:
                if isinstance(reply.error, Forbidden):
                    # Retrying cannot help: with worker keys the gateway takes only the key's
                    # name as worker_id (docs/security.md, "Lease fencing").
                    log.error("the worker gateway refused this worker: %s", reply.error)
                    self.stop_now()
                    return
                if not isinstance(reply.error, NoLeader | Unavailable):
                    log.warning("lease refused: %s", reply.error)
                self._next_lease_at = now + backoff_s(self._lease_attempt)
                self._lease_attempt += 1
                return
            self._lease_attempt = 0
            for task in self._accept(list(reply.tasks)):
                self._request("release", [task], now)
            return
        if reply.kind == "tasks" and reply.tasks:
            # A lease answered after we gave up on it: the tasks are ours all the same. Hand
            # back what does not fit rather than leave it to the visibility timeout.
            free = max(0, self._free_slots())
            tasks = list(reply.tasks)
            back = self._accept(tasks[:free]) + self._accept_finished(tasks[free:])
            for task in back:
                self._request("release", [task], now)
            return
        req = self._pending.pop(reply.rid, None)
        if req is None:
            return  # pong, or a late answer to a request that was sent again
        if req.op == "ack_many":
            self._handle_acked(req, reply, now)
            return
        task = req.tasks[0]
        error = reply.error
        if req.op == "extend":
            self._extended(task.id, req.sent_at, ok=error is None,
                           lost=isinstance(error, LeaseConflict), lease_s=req.lease_s)
            return
        if isinstance(error, NoLeader | Unavailable):
            self._retries.append((now + backoff_s(req.attempt), req))
            return
        if req.op == "ack" and getattr(error, "field", None) == "result":
            # The node's api.max_result_bytes is below ours: the task fails with its reason.
            log.warning("task %s: result refused by the gateway: %s", task.id, error)
            with self._lock:
                self.counts.acked -= 1
                self.counts.nacked += 1
            self._request("nack", [task], now,
                          reason=invalid_result_reason(getattr(error, "message", str(error))))
            return
        if error is not None:
            log.warning("task %s: %s %s: %s", task.id, req.op,
                        "dropped (lease lost)" if isinstance(error, LeaseConflict) else "failed",
                        error)
        elif req.op == "release":
            with self._lock:
                self.counts.released += 1
            log_task("task_released", task)
        self._forget(task.id)

    def _handle_acked(self, req: Request, reply: Reply, now: float) -> None:
        """The answer to an ack_many: forget the tasks done, retry those refused for want of a
        leader, and fall back to single acks if the gateway does not know the message."""
        if reply.error is not None or len(reply.results) != len(req.tasks):
            if isinstance(reply.error, NoLeader | Unavailable):
                self._retries.append((now + backoff_s(req.attempt), req))
                return
            # A refusal of the message as a whole: the same acks one by one get an answer
            # each. Only a gateway that does not know ack_many (an older one) is spared it
            # until the next connection.
            log.warning("ack_many refused (%s); sending acks one by one", reply.error)
            if getattr(reply.error, "code", None) == ErrorCode.UNKNOWN_KIND:
                self._ack_many = False
            for task, result in zip(req.tasks, _results_of(req), strict=True):
                self._request("ack", [task], now, attempt=req.attempt, results=[result])
            return
        done: list[str] = []
        again: list[Task] = []
        again_results: list[Any] = []
        for task, result, error in zip(req.tasks, _results_of(req), reply.results, strict=True):
            if isinstance(error, NoLeader | Unavailable):
                again.append(task)
                again_results.append(result)
                continue
            if error is not None:
                lost = isinstance(error, LeaseConflict | TaskNotFound)
                log.warning("task %s: ack %s: %s", task.id,
                            "dropped (lease lost)" if lost else "failed", error)
            done.append(task.id)
        if again:
            self._retries.append((now + backoff_s(req.attempt),
                                  Request("ack_many", again, now, attempt=req.attempt,
                                          results=again_results)))
        if done:
            self._forget_many(done)


def _results_of(req: Request) -> list[Any]:
    """The result of each task of an ack request (None: none)."""
    return list(req.results) if req.results is not None else [None] * len(req.tasks)
