"""``ZmqProducer``: enqueue over the ZeroMQ worker gateway, with Kafka-style linger batching.

A producer shares one DEALER socket (a ``ZmqWorkerClient``, with its CURVE keys and handshake
checks) between every thread of the process: callers hand their tasks to one I/O thread, which
owns the socket, and wait for their own answer. Tasks that callers hand over within
``linger_ms`` of the first one waiting (at most 1,000) go to the gateway as one
``enqueue_batch``: one Raft entry and one fsync for all of them, and each caller gets its own
task back once that entry is committed (docs/worker-protocol.md). With ``linger_ms=0`` only the
tasks that are waiting together at one turn of the I/O thread share a message, which under
load is already most of them (the same rule as the gateway's acks).

Semantics are the HTTP ``Client``'s: every task carries an idempotency key (a random one when
the caller gives none), so a request sent again (after ``no_leader``, a timeout, or on another
node) never creates a second task; ``no_leader``, ``timeout`` and ``unavailable`` are retried
with capped, jittered backoff until ``retry_deadline_s``; every other refusal raises its typed
error. A refused coalesced batch is sent again task by task, so that one caller's bad task
fails only that caller. A gateway that does not answer within ``timeout_s`` is given up for
the next address of ``addrs``, and what was in flight is sent there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq

from dqueue.client.errors import DQueueError, NoLeader, ServerError, Unauthorized, Unavailable
from dqueue.client.http_client import RetryPolicy
from dqueue.client.task import Task
from dqueue.client.worker_keys import WorkerKeys
from dqueue.client.zmq_client import Reply, ZmqWorkerClient
from dqueue.protocol.errors import ErrorCode
from dqueue.queue.fields import MAX_BATCH

_TASK_FIELDS = frozenset({"type", "payload", "priority", "max_retries", "idempotency_key",
                          "delay", "queue"})
_IDLE_POLL_MS = 100


@dataclass
class _Item:
    """One task handed to the I/O thread, and what its caller waits for.

    Invariant: ``done`` is set exactly once, after ``task`` or ``error`` is.
    """

    body: dict[str, Any]
    auto_key: bool
    deadline: float  # retries stop here (monotonic seconds)
    done: threading.Event = field(default_factory=threading.Event)
    task: Task | None = None
    error: DQueueError | None = None

    def settle(self, task: Task | None, error: DQueueError | None = None) -> None:
        if self.done.is_set():
            return
        if task is not None and self.auto_key and task.duplicate:
            # Our own resend found the first attempt: for the caller it is not a duplicate.
            task = dataclasses.replace(task, duplicate=False)
        self.task, self.error = task, error
        self.done.set()


@dataclass
class _Unit:
    """The tasks of one request to the gateway.

    ``whole`` units (an ``enqueue_many`` chunk, or a task sent alone) succeed or fail together;
    a coalesced unit of several callers' tasks that is refused is split into lone units.
    """

    items: list[_Item]
    whole: bool
    attempt: int = 0
    not_before: float = 0.0
    sent_at: float = 0.0


class ZmqProducer:
    """Enqueue tasks over the worker gateway of a node; thread-safe.

    Args:
        addrs: One gateway address or several (``tcp://127.0.0.1:8101``, ``127.0.0.1:8101``);
            the producer talks to one at a time and moves to the next when one stays silent.
        linger_ms: How long the first waiting task waits for others to share its message
            (Kafka's ``linger.ms``); 0: only the tasks already waiting together.
        timeout_s: How long a request waits for its answer before the gateway is given up
            (and the request sent to the next address).
        retry: Deadline and backoff of retries (``no_leader``, ``timeout``, ``unavailable``).
        keys: CURVE keys for a gateway with worker keys (docs/security.md); None otherwise.
        context: The ZeroMQ context (the process-wide one when None).
        max_batch: Most tasks of one coalesced message (1 to 1,000).
    """

    def __init__(
        self,
        addrs: str | Sequence[str],
        *,
        linger_ms: float = 0.0,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        keys: WorkerKeys | None = None,
        context: zmq.Context | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.addrs = [addrs] if isinstance(addrs, str) else list(addrs)
        if not self.addrs:
            raise ValueError("at least one gateway address is needed")
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be 1 to {MAX_BATCH}")
        self.linger_ms = linger_ms
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.max_batch = max_batch
        self.messages_sent = 0  # requests sent to gateways (resends included)
        self._keys = keys
        self._context = context or zmq.Context.instance()
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._incoming: deque[_Unit] = deque()  # Guarded by _lock.
        self._woken = False  # Guarded by _lock: a wake-up byte is in the pipe.
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        self._fatal: DQueueError | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,),
                                        name="dqueue-zmq-producer", daemon=True)
        self._thread.start()
        started.wait()

    # -- producer surface ---------------------------------------------------------------

    def enqueue(
        self,
        type: str,
        payload: Any = None,
        *,
        priority: int | None = None,
        max_retries: int | None = None,
        idempotency_key: str | None = None,
        delay: float | None = None,
        queue: str | None = None,
    ) -> Task:
        """Enqueue one task and return it once committed; arguments as ``Client.enqueue``.

        Concurrent calls from several threads share messages (``linger_ms``).

        Raises:
            DQueueError: the typed refusal (InvalidRequest naming the field, QueueNotFound...),
                or NoLeader/Unavailable once the retry deadline passed.
        """
        [item] = self._items([{"type": type, "payload": payload, "priority": priority,
                               "max_retries": max_retries, "idempotency_key": idempotency_key,
                               "delay": delay, "queue": queue}])
        self._submit([_Unit([item], whole=False)])
        return self._result(item)

    def enqueue_many(self, tasks: Iterable[Mapping[str, Any]]) -> list[Task]:
        """Enqueue many tasks in messages of up to 1,000 (each one Raft entry), in order.

        Items are mappings as for ``Client.enqueue_many`` (``type``; optionally ``payload``,
        ``priority``, ``max_retries``, ``idempotency_key``, ``delay`` in seconds, ``queue``).
        A refusal of a chunk raises its typed error (the field named as ``tasks[i].field``
        within that chunk); chunks before it stay enqueued.
        """
        items = self._items(tasks)
        units = [_Unit(items[start:start + MAX_BATCH], whole=True)
                 for start in range(0, len(items), MAX_BATCH)]
        self._submit(units)
        return [self._result(item) for item in items]

    def close(self) -> None:
        """Stop the I/O thread; tasks not yet answered fail with Unavailable."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        self._thread.join(10)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> ZmqProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- caller side --------------------------------------------------------------------

    def _items(self, tasks: Iterable[Mapping[str, Any]]) -> list[_Item]:
        deadline = time.monotonic() + self.retry.deadline_s
        items = []
        for task in tasks:
            unknown = set(task) - _TASK_FIELDS
            if unknown:
                raise ValueError(f"unknown task fields {sorted(unknown)}")
            key = task.get("idempotency_key")
            body = {"type": task["type"], "payload": task.get("payload"),
                    "idempotency_key": key or f"auto-{uuid.uuid4().hex}"}
            for name in ("priority", "max_retries", "queue"):
                if task.get(name) is not None:
                    body[name] = task[name]
            if task.get("delay") is not None:
                body["delay_ms"] = int(task["delay"] * 1000)
            items.append(_Item(body, key is None, deadline))
        return items

    def _submit(self, units: list[_Unit]) -> None:
        with self._lock:
            if self._closed:
                raise Unavailable("the producer is closed", code=ErrorCode.UNAVAILABLE)
            self._incoming.extend(units)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _result(self, item: _Item) -> Task:
        # The I/O thread settles every item by its deadline plus one reply timeout; the extra
        # margin only guards against that thread having died.
        if not item.done.wait(self.retry.deadline_s + 2 * self.timeout_s + 5):
            raise Unavailable("the producer's I/O thread is not answering",
                              code=ErrorCode.UNAVAILABLE)
        if item.error is not None:
            raise item.error
        assert item.task is not None
        return item.task

    # -- I/O thread ---------------------------------------------------------------------

    def _run(self, started: threading.Event) -> None:
        io = _ProducerIo(self)
        started.set()
        try:
            io.loop()
        finally:
            io.shutdown()


class _ProducerIo:
    """The state of the I/O thread: the socket, the lingering tasks and the requests in flight.
    Used only by that thread."""

    def __init__(self, producer: ZmqProducer) -> None:
        self.p = producer
        self.addr_index = 0
        self.client = self._connect()
        self.pool: list[_Item] = []  # lone tasks lingering for company
        self.pool_since = 0.0
        self.ready: deque[_Unit] = deque()  # units to send (a retry once its not_before)
        self.in_flight: dict[Any, _Unit] = {}

    def _connect(self) -> ZmqWorkerClient:
        addr = self.p.addrs[self.addr_index % len(self.p.addrs)]
        return ZmqWorkerClient(addr, timeout_s=self.p.timeout_s, keys=self.p._keys,
                               context=self.p._context)

    def _poller(self) -> zmq.Poller:
        poller = zmq.Poller()
        poller.register(self.p._wake_r, zmq.POLLIN)
        poller.register(self.client.socket, zmq.POLLIN)
        poller.register(self.client.monitor, zmq.POLLIN)
        return poller

    def loop(self) -> None:
        poller = self._poller()
        while True:
            self._take_incoming()
            if self.p._closed:
                return
            now = time.monotonic()
            self._send_due(now)
            events = dict(poller.poll(self._poll_ms(now)))
            if self.p._wake_r in events:
                os.read(self.p._wake_r, 4096)
                with self.p._lock:
                    self.p._woken = False
            try:
                self.client.check_handshake()
            except Unauthorized as exc:
                self._fail_everything(exc)
                continue
            while (reply := self.client.recv_nowait()) is not None:
                self._handle(reply, time.monotonic())
            if self._expire(time.monotonic()):
                poller = self._poller()

    def _poll_ms(self, now: float) -> int:
        wake_at = now + _IDLE_POLL_MS / 1000
        if self.pool:
            wake_at = min(wake_at, self.pool_since + self.p.linger_ms / 1000)
        if self.ready:
            wake_at = min(wake_at, min(unit.not_before for unit in self.ready))
        return max(0, int((wake_at - now) * 1000))

    def _take_incoming(self) -> None:
        with self.p._lock:
            units = list(self.p._incoming)
            self.p._incoming.clear()
        now = time.monotonic()
        for unit in units:
            if unit.whole:
                self.ready.append(unit)
            else:
                if not self.pool:
                    self.pool_since = now
                self.pool.extend(unit.items)

    def _send_due(self, now: float) -> None:
        while self.pool and (len(self.pool) >= self.p.max_batch
                             or now >= self.pool_since + self.p.linger_ms / 1000):
            chunk, self.pool = self.pool[:self.p.max_batch], self.pool[self.p.max_batch:]
            self.pool_since = now
            self._send(_Unit(chunk, whole=len(chunk) == 1), now)
        waiting = len(self.ready)
        for _ in range(waiting):
            unit = self.ready.popleft()
            if unit.not_before <= now:
                self._send(unit, now)
            else:
                self.ready.append(unit)

    def _send(self, unit: _Unit, now: float) -> None:
        try:
            rid = self.client.send_enqueue([item.body for item in unit.items])
        except Unavailable as exc:
            self._retry(unit, exc, now)
            return
        unit.sent_at = now
        self.in_flight[rid] = unit
        self.p.messages_sent += 1

    def _handle(self, reply: Reply, now: float) -> None:
        unit = self.in_flight.pop(reply.rid, None)
        if unit is None:
            return  # an answer to a request already given up (sent again elsewhere)
        if reply.error is not None:
            self._refused(unit, reply.error, now)
            return
        if reply.kind != "enqueued" or len(reply.tasks) != len(unit.items):
            error = ServerError(f"unexpected {reply.kind} reply", code=ErrorCode.BAD_REPLY)
            for item in unit.items:
                item.settle(None, error)
            return
        for item, task in zip(unit.items, reply.tasks, strict=True):
            item.settle(task)

    def _refused(self, unit: _Unit, error: DQueueError, now: float) -> None:
        if isinstance(error, NoLeader | Unavailable):
            self._retry(unit, error, now)
            return
        if not unit.whole and len(unit.items) > 1:
            # A coalesced batch is all or nothing: nothing of it was enqueued. Each caller's
            # task goes again alone, so that only the bad one is refused.
            for item in unit.items:
                self.ready.append(_Unit([item], whole=True))
            return
        for item in unit.items:
            item.settle(None, error)

    def _retry(self, unit: _Unit, error: DQueueError, now: float) -> None:
        if now >= min(item.deadline for item in unit.items):
            for item in unit.items:
                item.settle(None, error)
            return
        unit.not_before = now + self.p.retry.backoff_s(unit.attempt, self.p._rng)
        unit.attempt += 1
        self.ready.append(unit)

    def _expire(self, now: float) -> bool:
        """Give up a gateway that left a request unanswered for ``timeout_s``: move to the next
        address and send everything in flight there (the idempotency keys make it safe).
        Returns whether the socket changed."""
        if not any(now - unit.sent_at > self.p.timeout_s for unit in self.in_flight.values()):
            return False
        silent = Unavailable(f"no answer from {self.client.endpoint} within "
                             f"{self.p.timeout_s:.1f}s", code=ErrorCode.UNAVAILABLE)
        units = list(self.in_flight.values())
        self.in_flight.clear()
        self.client.close_socket()
        self.addr_index += 1
        self.client = self._connect()
        for unit in units:
            self._retry(unit, silent, now)
            unit.not_before = now  # a new gateway: no need to wait
        return True

    def _fail_everything(self, error: DQueueError) -> None:
        units = [*self.ready, *self.in_flight.values()]
        for item in [*self.pool, *(item for unit in units for item in unit.items)]:
            item.settle(None, error)
        self.pool, self.ready = [], deque()
        self.in_flight.clear()

    def shutdown(self) -> None:
        self._take_incoming()
        self._fail_everything(Unavailable("the producer is closed", code=ErrorCode.UNAVAILABLE))
        self.client.close_socket()
