"""The ZeroMQ client for workers: lease, ack, nack and extend over the worker gateway.

One ``ZmqWorkerClient`` owns one DEALER socket and must only be used from the thread that
created it (ZeroMQ sockets are not thread-safe); create one per thread. The protocol is
docs/worker-protocol.md. Two surfaces:

- blocking calls (``lease``, ``ack``, ``nack``, ``extend``, ``ping``) that wait for their reply;
- asynchronous ``send_*`` calls returning a request id, with ``recv`` handing back replies as they
  arrive, for a runtime that pipelines many requests on one socket (dqueue.worker).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from dqueue.client.errors import (
    DQueueError,
    NoLeader,
    ServerError,
    Unavailable,
    error_from_code,
)
from dqueue.client.task import Lease, Task, delay_ms_of
from dqueue.client.worker_keys import (
    HANDSHAKE_EVENTS,
    MAX_SILENT_DISCONNECTS,
    WorkerKeys,
    handshake_error,
)
from dqueue.protocol import wire
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.kinds import WorkerKind
from dqueue.queue.task import TaskStatus

HEARTBEAT_MS = 1_000
SEND_HWM = 10_000  # requests queued towards the gateway before sends fail with Unavailable


@dataclass(frozen=True)
class Reply:
    """One reply from the gateway.

    Attributes:
        kind: ``tasks``, ``res``, ``acked``, ``enqueued``, ``err`` or ``pong``.
        rid: The request id the reply answers.
        tasks: Leased tasks (kind ``tasks``; empty when none became visible in time), or the
            enqueued tasks in order (kind ``enqueued``, each with its ``duplicate`` flag).
        task: The task after an ack, nack or extend (kind ``res``).
        error: The typed error (kind ``err``).
        results: Per item of an ``ack_many``, in order: None when done, else the typed error
            (kind ``acked``).
    """

    kind: str
    rid: Any
    tasks: tuple[Task, ...] = ()
    task: Task | None = None
    error: DQueueError | None = None
    results: tuple[DQueueError | None, ...] = ()


def normalize_endpoint(addr: str) -> str:
    """``tcp://host:port`` for ``addr``; accepts ``host:port`` and ``:port`` (loopback)."""
    text = addr.strip()
    if "://" in text:
        return text
    if text.startswith(":"):
        text = "127.0.0.1" + text
    return "tcp://" + text


_STATUS_BY_TEXT = {status.value: status for status in TaskStatus}
_PLAIN_KEYS = frozenset({"id", "type", "payload", "priority", "max_retries", "attempts",
                         "status", "idempotency_key", "created_at_ms", "updated_at_ms",
                         "visible_at_ms", "lease", "last_error", "queue", "source_queue"})


def task_from_plain(obj: Any) -> Task:
    """``Task.from_wire`` for the plain form the gateway sends, about five times cheaper.

    A leased batch is decoded on the worker's I/O thread, where a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) was the largest cost per task. An object
    of exactly the plain form, with fields of the right types, is built by filling the new
    instance's ``__dict__`` at once; anything else goes through ``Task.from_wire``, which
    checks and converts (and raises ValueError on what is not a task).
    """
    if type(obj) is not dict or obj.keys() != _PLAIN_KEYS:
        return Task.from_wire(obj)
    status = _STATUS_BY_TEXT.get(obj["status"])
    lease_obj = obj["lease"]
    key, last_error = obj["idempotency_key"], obj["last_error"]
    if (status is None or type(obj["id"]) is not str or type(obj["type"]) is not str
            or type(obj["priority"]) is not int or type(obj["max_retries"]) is not int
            or type(obj["attempts"]) is not int or type(obj["created_at_ms"]) is not int
            or type(obj["updated_at_ms"]) is not int or type(obj["visible_at_ms"]) is not int
            or not (last_error is None or type(last_error) is str)
            or not (key is None or type(key) is str) or type(obj["queue"]) is not str
            or not (obj["source_queue"] is None or type(obj["source_queue"]) is str)):
        return Task.from_wire(obj)
    lease = None
    if lease_obj is not None:
        if (type(lease_obj) is not dict or type(lease_obj.get("worker_id")) is not str
                or type(lease_obj.get("token")) is not str
                or type(lease_obj.get("expires_at_ms")) is not int):
            return Task.from_wire(obj)
        lease = Lease(lease_obj["worker_id"], lease_obj["token"], lease_obj["expires_at_ms"])
    task = object.__new__(Task)
    task.__dict__.update(obj, status=status, lease=lease, duplicate=False)
    return task


def parse_reply(frames: list[bytes]) -> Reply:
    """Decode one gateway message.

    Raises:
        wire.FrameError: The frames are malformed or not a reply this client knows.
    """
    kind, body = wire.decode(frames)
    if not isinstance(body, dict):
        raise wire.FrameError("reply body is not a map")
    rid = body.get("rid")
    try:
        if kind == WorkerKind.TASKS:
            return Reply("tasks", rid, tasks=tuple(map(task_from_plain, body["tasks"])))
        if kind == WorkerKind.ENQUEUED:
            return Reply("enqueued", rid, tasks=tuple(map(Task.from_wire, body["tasks"])))
        if kind == WorkerKind.ACKED:
            return Reply("acked", rid, results=tuple(
                None if item is None else _item_error(item) for item in body["results"]))
        if kind == WorkerKind.RES:
            return Reply("res", rid, task=Task.from_wire(body["task"]))
        if kind == WorkerKind.ERR:
            error = error_from_code(str(body.get("code", ErrorCode.ERROR)),
                                    str(body.get("message", "")), field=body.get("field"))
            if isinstance(error, NoLeader):
                error.leader_id = body.get("leader_id")
                error.leader_http = body.get("leader_http")
            return Reply("err", rid, error=error)
        if kind == WorkerKind.PONG:
            return Reply("pong", rid)
    except (KeyError, TypeError, ValueError) as exc:
        raise wire.FrameError(f"bad {kind!r} reply: {exc}") from None
    raise wire.FrameError(f"unknown reply kind {kind!r}")


def _item_error(item: Any) -> DQueueError:
    """The typed error of one refused ``ack_many`` item (``{"code", "message"}``)."""
    if not isinstance(item, dict):
        raise TypeError("an ack_many result is null or a map")
    return error_from_code(str(item.get("code", ErrorCode.ERROR)), str(item.get("message", "")))


class ZmqWorkerClient:
    """A worker's connection to one node's worker gateway.

    Args:
        addr: The gateway address (``tcp://127.0.0.1:9191``, or ``127.0.0.1:9191``).
        worker_id: The id leases are held under. When None: the name of ``keys`` (with worker
            keys the gateway accepts no other), else a random one.
        timeout_s: How long a blocking call waits for its reply (a lease adds its wait).
        retry_deadline_s: How long blocking calls retry ``no_leader`` answers.
        context: The ZeroMQ context (the process-wide one when None).
        keys: CURVE keys for a gateway that authenticates workers (docs/security.md); None
            for a gateway without keys (loopback, or a node started with ``--insecure``).

    A gateway that refuses the handshake (an unknown key, missing keys, protected mode) makes
    the next call raise ``Unauthorized`` saying what to fix, within one poll (at most a second)
    of the refusal, instead of waiting for a reply that never comes.
    """

    def __init__(
        self,
        addr: str,
        *,
        worker_id: str | None = None,
        timeout_s: float = 10.0,
        retry_deadline_s: float = 30.0,
        context: zmq.Context | None = None,
        keys: WorkerKeys | None = None,
    ) -> None:
        self.endpoint = normalize_endpoint(addr)
        self.worker_id = (worker_id or (keys.name if keys is not None else "")
                          or f"zmq-{uuid.uuid4().hex[:12]}")
        self.timeout_s = timeout_s
        self.retry_deadline_s = retry_deadline_s
        self.dropped = 0  # malformed replies dropped
        self._owner = threading.get_ident()
        self._rids = itertools.count(1)
        self._stash: deque[Reply] = deque()
        self._rng = random.Random()
        ctx = context or zmq.Context.instance()
        self.socket: zmq.Socket = ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._curve = keys is not None
        if keys is not None:
            keys.apply(self.socket)
        # Handshake outcomes, read by check_handshake on this thread.
        self._monitor = self.socket.get_monitor_socket(HANDSHAKE_EVENTS)
        self._handshake_ok = False
        self._silent_disconnects = 0
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self.socket.connect(self.endpoint)
        self._last_send = time.monotonic()

    # -- asynchronous surface -------------------------------------------------------

    def send_lease(
        self,
        max_tasks: int = 1,
        *,
        types: Sequence[str] | None = None,
        lease_ms: int | None = None,
        wait_ms: int = 0,
        queues: Sequence[str] | None = None,
    ) -> Any:
        """Ask for up to ``max_tasks`` tasks of ``queues`` (None: ``default``); the ``tasks``
        reply comes when some are leased or after ``wait_ms`` (empty). Returns the request
        id."""
        body = {"worker_id": self.worker_id, "max_tasks": max_tasks,
                "types": list(types) if types else None, "lease_ms": lease_ms,
                "wait_ms": wait_ms}
        if queues:
            body["queues"] = list(queues)
        return self._send(WorkerKind.LEASE, body)

    def send_ack(self, task: Task, result: Any = None) -> Any:
        """Complete ``task`` under its lease, keeping ``result`` (any JSON) on it when given.
        Returns the request id."""
        body = self._lease_fields(task)
        if result is not None:
            body["result"] = result
        return self._send(WorkerKind.ACK, body)

    def send_ack_many(self, tasks: Sequence[Task], results: Sequence[Any] | None = None) -> Any:
        """Complete 1 to 1,000 tasks held by this client's worker id in one message, with
        ``results[i]`` (None: no result) kept on ``tasks[i]``; the ``acked`` reply has one
        outcome per task, in order. Returns the request id."""
        items: list[dict[str, Any]] = [{"id": task.id, "token": task.lease_token}
                                       for task in tasks]
        for item, result in zip(items, results or (), strict=False):
            if result is not None:
                item["result"] = result
        return self._send(WorkerKind.ACK_MANY, {"worker_id": self.worker_id, "items": items})

    def send_nack(self, task: Task, reason: str = "", *, dead_letter: bool = False,
                  traceback: str | None = None, retry_delay: float | None = None) -> Any:
        """Fail ``task`` (retried after backoff, or dead-lettered), with the last lines of the
        failure's ``traceback`` when given; ``retry_delay`` (seconds) replaces the queue's
        backoff. Returns the request id."""
        body = self._lease_fields(task)
        body.update(reason=reason, dead_letter=dead_letter)
        if traceback is not None:
            body["traceback"] = traceback
        if retry_delay is not None:
            body["retry_delay_ms"] = delay_ms_of(retry_delay)
        return self._send(WorkerKind.NACK, body)

    def send_extend(self, task: Task, lease_ms: int | None = None) -> Any:
        """Move the lease's expiry to ``lease_ms`` from now. Returns the request id."""
        body = self._lease_fields(task)
        body["lease_ms"] = lease_ms
        return self._send(WorkerKind.EXTEND, body)

    def send_release(self, task: Task) -> Any:
        """Hand ``task`` back unstarted (pending now, no attempt counted). Returns the request
        id."""
        return self._send(WorkerKind.RELEASE, self._lease_fields(task))

    def send_enqueue(self, tasks: Sequence[dict[str, Any]]) -> Any:
        """Enqueue the task bodies of docs/worker-protocol.md (``type``, ``payload``...): one
        as ``enqueue``, more (up to 1,000) as ``enqueue_batch``; the ``enqueued`` reply comes
        once they are committed. Returns the request id (``dqueue.client.ZmqProducer`` is the
        producer's surface over this)."""
        if len(tasks) == 1:
            return self._send(WorkerKind.ENQUEUE, dict(tasks[0]))
        return self._send(WorkerKind.ENQUEUE_BATCH, {"tasks": list(tasks)})

    def send_ping(self) -> Any:
        """Heartbeat: keeps this connection's waiting leases alive. Returns the request id."""
        return self._send(WorkerKind.PING, {})

    def send_worker_heartbeat(self, info: dict[str, Any], leaving: bool = False) -> Any:
        """Say this worker is alive (the workers table, ``GET /workers``): ``info`` is the
        ``heartbeat`` message's fields (dqueue/worker/heartbeat.py builds them); ``leaving``
        drops the worker at once. Returns the request id."""
        return self._send(WorkerKind.HEARTBEAT, {**info, "leaving": leaving})

    def send_bye(self) -> None:
        """Tell the gateway to drop this connection's waiting lease requests now."""
        self._send(WorkerKind.BYE, {})

    def maybe_heartbeat(self) -> None:
        """Send a ping if nothing was sent for a heartbeat interval."""
        if (time.monotonic() - self._last_send) * 1000 >= HEARTBEAT_MS:
            self.send_ping()

    @property
    def monitor(self) -> zmq.Socket:
        """The socket's monitor, for a caller that polls it beside ``socket``; read by
        ``check_handshake``."""
        return self._monitor

    def check_handshake(self) -> None:
        """Raise ``Unauthorized`` if the gateway refused this connection's handshake.

        Reads the socket's monitor events without waiting; a caller that polls the socket
        itself (``dqueue.worker``) calls it every turn or so.
        """
        self._check_thread()
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)["event"]
            except zmq.Again:
                return
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshake_ok = True
            elif event == zmq.EVENT_DISCONNECTED:
                if not self._handshake_ok and self._curve:
                    self._silent_disconnects += 1
                    if self._silent_disconnects >= MAX_SILENT_DISCONNECTS:
                        raise handshake_error(self.endpoint, event, self._curve)
            else:
                raise handshake_error(self.endpoint, event, self._curve)

    def recv(self, timeout_ms: int = 0) -> Reply | None:
        """The next reply, waiting up to ``timeout_ms``; None if none came. Malformed replies
        are dropped and counted in ``dropped``.

        Raises:
            Unauthorized: the gateway refused the handshake (``check_handshake``).
        """
        self._check_thread()
        if self._stash:
            return self._stash.popleft()
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            events = dict(self._poller.poll(remaining_ms))
            if self._monitor in events:
                self.check_handshake()
            if self.socket not in events:
                if time.monotonic() >= deadline:
                    return None
                continue
            frames = self.socket.recv_multipart(zmq.NOBLOCK)
            try:
                return parse_reply(frames)
            except wire.FrameError:
                self.dropped += 1
            if time.monotonic() >= deadline:
                return None

    def recv_nowait(self) -> Reply | None:
        """The next reply already received, or None; for a caller that polls the socket
        itself. Malformed replies are dropped and counted in ``dropped``."""
        self._check_thread()
        if self._stash:
            return self._stash.popleft()
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return None
            try:
                return parse_reply(frames)
            except wire.FrameError:
                self.dropped += 1

    # -- blocking surface ---------------------------------------------------------------

    def lease(
        self,
        max_tasks: int = 1,
        *,
        types: Sequence[str] | None = None,
        lease_seconds: float | None = None,
        wait_seconds: float = 0.0,
        queues: Sequence[str] | None = None,
    ) -> list[Task]:
        """Lease up to ``max_tasks`` tasks of ``queues`` (None: ``default``), waiting up to
        ``wait_seconds`` for one."""
        lease_ms = None if lease_seconds is None else int(lease_seconds * 1000)
        wait_ms = int(wait_seconds * 1000)
        reply = self._call(lambda: self.send_lease(max_tasks, types=types, lease_ms=lease_ms,
                                                   wait_ms=wait_ms, queues=queues),
                           wait_seconds)
        return list(reply.tasks)

    def ack(self, task: Task, result: Any = None) -> Task:
        """Complete ``task``, keeping ``result`` on it when given. Raises LeaseConflict if the
        lease is no longer ours."""
        return self._task_of(self._call(lambda: self.send_ack(task, result)))

    def ack_many(self, tasks: Sequence[Task]) -> list[DQueueError | None]:
        """Complete ``tasks`` (held by this client's worker id) in one message; returns, per
        task, None when done or the error (LeaseConflict...) that refused it."""
        reply = self._call(lambda: self.send_ack_many(tasks))
        if reply.kind != "acked" or len(reply.results) != len(tasks):
            raise ServerError(f"unexpected {reply.kind} reply", code=ErrorCode.BAD_REPLY)
        return list(reply.results)

    def nack(self, task: Task, reason: str = "", *, dead_letter: bool = False,
             traceback: str | None = None, retry_delay: float | None = None) -> Task:
        """Fail ``task``: retried after backoff (or ``retry_delay`` seconds), or
        dead-lettered."""
        return self._task_of(self._call(lambda: self.send_nack(
            task, reason, dead_letter=dead_letter, traceback=traceback,
            retry_delay=retry_delay)))

    def release(self, task: Task) -> Task:
        """Hand ``task`` back unstarted: pending at once, its attempt not counted."""
        return self._task_of(self._call(lambda: self.send_release(task)))

    def extend(self, task: Task, lease_seconds: float | None = None) -> Task:
        """Move the lease's expiry to ``lease_seconds`` from now (the default when None)."""
        lease_ms = None if lease_seconds is None else int(lease_seconds * 1000)
        return self._task_of(self._call(lambda: self.send_extend(task, lease_ms)))

    def ping(self) -> float:
        """Round trip to the gateway, in seconds."""
        start = time.monotonic()
        self._call(self.send_ping)
        return time.monotonic() - start

    def close(self) -> None:
        """Say goodbye and close the socket."""
        with contextlib.suppress(zmq.ZMQError, Unavailable):
            self.send_bye()
        self.close_socket()

    def close_socket(self) -> None:
        """Close the socket and its monitor without a goodbye."""
        with contextlib.suppress(zmq.ZMQError):
            self.socket.disable_monitor()
        self._monitor.close(0)
        self.socket.close(0)

    def __enter__(self) -> ZmqWorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _check_thread(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError("a ZmqWorkerClient is used only by the thread that created it")

    def _lease_fields(self, task: Task) -> dict[str, Any]:
        return {"id": task.id,
                "worker_id": task.lease.worker_id if task.lease else self.worker_id,
                "token": task.lease_token}

    def _send(self, kind: bytes, body: dict[str, Any]) -> Any:
        self._check_thread()
        rid = next(self._rids)
        body["rid"] = rid
        try:
            self.socket.send_multipart(wire.encode(kind, body), zmq.NOBLOCK)
        except zmq.Again:
            # SNDHWM messages already queued towards a gateway that is not taking them.
            raise Unavailable(f"{self.endpoint}: send queue full",
                              code=ErrorCode.UNAVAILABLE) from None
        self._last_send = time.monotonic()
        return rid

    def _call(self, send: Any, wait_s: float = 0.0) -> Reply:
        """Send with ``send()`` and wait for its reply; retry ``no_leader`` with backoff."""
        retry_deadline = time.monotonic() + self.retry_deadline_s
        attempt = 0
        while True:
            rid = send()
            reply = self._await(rid, self.timeout_s + wait_s)
            if reply.error is None:
                return reply
            if not isinstance(reply.error, NoLeader) or time.monotonic() >= retry_deadline:
                raise reply.error
            time.sleep(self._rng.uniform(0, min(1.0, 0.05 * 2 ** attempt)))
            attempt += 1

    def _await(self, rid: Any, timeout_s: float) -> Reply:
        deadline = time.monotonic() + timeout_s
        held: list[Reply] = []
        try:
            while True:
                remaining_ms = int((deadline - time.monotonic()) * 1000)
                if remaining_ms <= 0:
                    raise Unavailable(f"no reply from {self.endpoint} within {timeout_s:.1f}s",
                                      code=ErrorCode.UNAVAILABLE)
                reply = self.recv(min(remaining_ms, HEARTBEAT_MS))
                if reply is None:
                    self.maybe_heartbeat()
                    continue
                if reply.rid == rid:
                    return reply
                if reply.kind != "pong":  # our own heartbeats' answers are not kept
                    held.append(reply)
        finally:
            self._stash.extend(held)

    @staticmethod
    def _task_of(reply: Reply) -> Task:
        if reply.task is None:
            raise ServerError(f"unexpected {reply.kind} reply", code=ErrorCode.BAD_REPLY)
        return reply.task
