"""The worker runtime over the ZeroMQ worker gateway: one I/O thread, pipelined requests.

The thread calling ``run`` owns the DEALER to the gateway and an inproc PULL. Handler threads
never touch the DEALER: they put verdicts on a queue and wake the I/O thread with an empty frame on
their own PUSH socket. The I/O thread keeps up to two lease requests in flight for the free slots
(never asking for more than are free), sends verdicts, extensions and hand-backs without waiting
for their answers (matching answers by request id), and sends again what went unanswered for
``request_timeout_ms``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from dqueue.client.errors import LeaseConflict, NoLeader, Unavailable
from dqueue.client.task import Task
from dqueue.client.zmq_client import Reply, ZmqWorkerClient
from dqueue.worker.app import Completion, Verdict, Worker
from dqueue.worker.runtime import RuntimeConfig, State, WorkerRuntime, backoff_s

log = logging.getLogger("dqueue.worker")

POLL_MS = 50
MAX_INBOX_BURST = 1_000
MAX_LEASES = 2  # lease requests in flight at once
GATEWAY_SILENCE_S = 5.0  # no reply at all for this long, with requests waiting: try the next
LEASE_SETTLE_S = 0.2  # after bye, how long a lease answer already sent may take to arrive


@dataclass
class Request:
    """A request in flight: ``op`` is ack, nack, dead_letter, extend or release."""

    op: str
    task: Task
    sent_at: float
    reason: str = ""
    lease_s: float | None = None
    attempt: int = 0


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
    """

    def __init__(
        self,
        worker: Worker,
        config: RuntimeConfig,
        endpoints: str | Sequence[str],
        context: zmq.Context | None = None,
        gateway_silence_s: float = GATEWAY_SILENCE_S,
    ) -> None:
        super().__init__(worker, config)
        self._gateway_silence_s = gateway_silence_s
        self.endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not self.endpoints:
            raise ValueError("at least one gateway address is needed")
        self._endpoint_index = 0
        self._ctx = context or zmq.Context.instance()
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._wake_addr = f"inproc://dqueue-worker-{uuid.uuid4().hex}"
        self._bound = threading.Event()
        self._local = threading.local()
        self._driver_ident: int | None = None
        self._wake_pending = False
        # I/O-thread state, set up by _drive/_connect.
        self._client: ZmqWorkerClient | None = None
        self._pending: dict[Any, Request] = {}
        self._leases: dict[Any, tuple[int, float]] = {}  # rid -> (tasks asked, sent at)
        self._retries: list[tuple[float, Request]] = []
        self._last_heard = 0.0

    # -- handler-thread side ----------------------------------------------------------

    def _send_completion(self, completion: Completion) -> None:
        self._count(completion.verdict)
        self._post(("done", completion))

    def _send_extend(self, task: Task, lease_s: float | None) -> None:
        self._post(("extend", (task, lease_s)))

    def _post(self, item: tuple[str, Any]) -> None:
        """Queue ``item`` for the I/O thread; wake it only if no wake-up is pending since it
        last read the inbox (it clears the flag before reading, so nothing is left behind)."""
        self._inbox.put(item)
        if not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def _wake(self) -> None:
        if threading.get_ident() == self._driver_ident or not self._bound.is_set():
            return  # the I/O thread looks at its state at least every POLL_MS anyway
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._local.push = self._ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            push.setsockopt(zmq.SNDHWM, 1)  # a pending wake-up is as good as many
            push.connect(self._wake_addr)
        # Again: a wake-up is already queued (as good as many); or the runtime is gone.
        with contextlib.suppress(zmq.ZMQError):
            push.send(b"", zmq.NOBLOCK)

    def _thread_exit(self) -> None:
        push = getattr(self._local, "push", None)
        if push is not None:
            push.close(0)
            self._local.push = None

    # -- I/O thread -------------------------------------------------------------------

    def _drive(self) -> None:
        self._driver_ident = threading.get_ident()
        pull = self._ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        pull.bind(self._wake_addr)
        self._bound.set()
        poller = zmq.Poller()
        poller.register(pull, zmq.POLLIN)
        client = self._connect(poller, time.monotonic())
        self._next_lease_at = 0.0
        self._lease_attempt = 0
        bye_sent = False
        bye_at = 0.0
        try:
            while not self._stop_now.is_set():
                now = time.monotonic()
                self._read_inbox(now)
                if self.state is not State.RUNNING:
                    if not bye_sent:
                        # The gateway drops our waiting lease and hands back what its slice
                        # in flight leases; an answer already on its way is still read below.
                        with contextlib.suppress(Unavailable):
                            client.send_bye()
                        bye_sent, bye_at = True, now
                    for task in self._to_release(now):
                        self._request("release", task, now, lease_s=self.config.release_ms / 1000)
                    lease_settled = not self._leases or now - bye_at > LEASE_SETTLE_S
                    if (self._is_drained() and not self._pending and not self._retries
                            and lease_settled):
                        break
                else:
                    self._maybe_lease(now)
                for task in self._due_for_extension(now):
                    self._request("extend", task, now, lease_s=self.config.lease_ms / 1000)
                self._resend_due(now)
                if self._is_gateway_silent(now):
                    client.socket.close(0)
                    self._endpoint_index = (self._endpoint_index + 1) % len(self.endpoints)
                    client = self._connect(poller, now)
                events = dict(poller.poll(0 if not self._inbox.empty() else POLL_MS))
                if pull in events:
                    while True:
                        try:
                            pull.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                if client.socket in events:
                    while (reply := client.recv(0)) is not None:
                        self._last_heard = time.monotonic()
                        self._handle_reply(reply, self._last_heard)
                if not bye_sent:
                    with contextlib.suppress(Unavailable):
                        client.maybe_heartbeat()
        finally:
            self._bound.clear()
            pull.close(0)
            if not bye_sent:
                client.close()
            else:
                client.socket.close(0)

    def _connect(self, poller: zmq.Poller, now: float) -> ZmqWorkerClient:
        """Connect to the current gateway; requests left unanswered by a previous one are sent
        again (ack and nack by the same worker are idempotent), its lease requests forgotten."""
        old = self._client
        if old is not None:
            poller.unregister(old.socket)
            log.warning("gateway %s silent; moving to %s", old.endpoint,
                        self.endpoints[self._endpoint_index])
        client = ZmqWorkerClient(self.endpoints[self._endpoint_index],
                                 worker_id=self.config.worker_id, context=self._ctx)
        poller.register(client.socket, zmq.POLLIN)
        self._client = client
        self._last_heard = now
        pending = list(self._pending.values())
        self._pending = {}
        self._leases = {}
        self._retries += [(now, req) for req in pending if req.op != "extend"]
        for req in pending:
            if req.op == "extend":
                self._extended(req.task.id, req.sent_at, ok=False)
        return client

    def _is_gateway_silent(self, now: float) -> bool:
        waiting = self._pending or self._leases
        return (len(self.endpoints) > 1 and bool(waiting)
                and now - self._last_heard > self._gateway_silence_s)

    def _read_inbox(self, now: float) -> None:
        self._wake_pending = False
        for _ in range(MAX_INBOX_BURST):
            try:
                what, item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if what == "done":
                completion: Completion = item
                op = ("ack" if completion.verdict is Verdict.ACK else
                      "nack" if completion.verdict is Verdict.NACK else "dead_letter")
                self._settle(completion.task.id)
                self._request(op, completion.task, now, reason=completion.reason)
            else:
                task, lease_s = item
                self._request("extend", task, now, lease_s=lease_s)

    def _maybe_lease(self, now: float) -> None:
        """Ask for the free slots not already asked for: at most MAX_LEASES requests in flight,
        and a second one only for a quarter of the capacity or more (no trickle of tiny leases).
        """
        if len(self._leases) >= MAX_LEASES or now < self._next_lease_at:
            return
        free = self._free_slots() - sum(asked for asked, _ in self._leases.values())
        if free <= 0 or (self._leases and free < max(1, self.config.capacity // 4)):
            return
        asked = min(free, 100)
        try:
            rid = self._client.send_lease(asked, types=self.types,
                                          lease_ms=self.config.lease_ms,
                                          wait_ms=self.config.wait_ms)
        except Unavailable:
            self._next_lease_at = now + backoff_s(self._lease_attempt)
            self._lease_attempt += 1
            return
        self._leases[rid] = (asked, now)

    def _request(
        self, op: str, task: Task, now: float, *, reason: str = "",
        lease_s: float | None = None, attempt: int = 0,
    ) -> None:
        client = self._client
        if op == "release":
            self._settle(task.id)
        try:
            if op == "ack":
                rid = client.send_ack(task)
            elif op in ("nack", "dead_letter"):
                rid = client.send_nack(task, reason, dead_letter=op == "dead_letter")
            else:
                rid = client.send_extend(task, None if lease_s is None
                                         else max(1, int(lease_s * 1000)))
        except Unavailable:
            req = Request(op, task, now, reason, lease_s, attempt)
            if op == "extend":
                self._extended(task.id, now, ok=False)
            else:
                self._retries.append((now + backoff_s(attempt), req))
            return
        self._pending[rid] = Request(op, task, now, reason, lease_s, attempt)

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
                    self._extended(req.task.id, req.sent_at, ok=False)
                else:
                    self._retries.append((now, req))
        if self._retries:
            due = [r for t, r in self._retries if t <= now]
            self._retries = [(t, r) for t, r in self._retries if t > now]
            for req in due:
                self._request(req.op, req.task, now, reason=req.reason, lease_s=req.lease_s,
                              attempt=req.attempt + 1)

    def _handle_reply(self, reply: Reply, now: float) -> None:
        if reply.rid is not None and reply.rid in self._leases:
            del self._leases[reply.rid]
            if reply.error is not None:
                if not isinstance(reply.error, NoLeader | Unavailable):
                    log.warning("lease refused: %s", reply.error)
                self._next_lease_at = now + backoff_s(self._lease_attempt)
                self._lease_attempt += 1
                return
            self._lease_attempt = 0
            for task in self._accept(list(reply.tasks)):
                self._request("release", task, now, lease_s=self.config.release_ms / 1000)
            return
        if reply.kind == "tasks" and reply.tasks:
            # A lease answered after we gave up on it: the tasks are ours all the same. Hand
            # back what does not fit rather than leave it to the visibility timeout.
            free = max(0, self._free_slots())
            tasks = list(reply.tasks)
            back = self._accept(tasks[:free]) + self._accept_finished(tasks[free:])
            for task in back:
                self._request("release", task, now, lease_s=self.config.release_ms / 1000)
            return
        req = self._pending.pop(reply.rid, None)
        if req is None:
            return  # pong, or a late answer to a request that was sent again
        error = reply.error
        if req.op == "extend":
            self._extended(req.task.id, req.sent_at, ok=error is None,
                           lost=isinstance(error, LeaseConflict), lease_s=req.lease_s)
            return
        if isinstance(error, NoLeader | Unavailable):
            self._retries.append((now + backoff_s(req.attempt), req))
            return
        if error is not None:
            log.warning("task %s: %s %s: %s", req.task.id, req.op,
                        "dropped (lease lost)" if isinstance(error, LeaseConflict) else "failed",
                        error)
        elif req.op == "release":
            with self._lock:
                self.counts.released += 1
        self._forget(req.task.id)
