"""One client interface over the four systems the comparison drives.

Every workload of ``workloads.py`` talks to a system only through ``BenchClient``:
``enqueue`` (one task, returns once the system has confirmed it durably), ``enqueue_batch``
(many tasks, returns once every one is confirmed), ``lease_ack`` (take one task, acknowledge it,
return once the acknowledgement is confirmed where the system confirms it), and ``read_back``
(every key stored under the W4 name). A ``Target`` says which system and which nodes; it is
pickled into each load process, which builds its own client there.

The asyncio clients (nats-py, aiormq) run on a private event loop, one operation at a time, so
that the driver's loop is the same synchronous loop for every system.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PAD = "x" * 100
# How long a read-back keeps asking a cluster that has just lost its leader.
READ_BACK_S = 60.0


def payload_of(key: str) -> dict[str, Any]:
    """The task body every system carries: its key and 100 bytes of padding (~130 bytes)."""
    return {"key": key, "pad": PAD}


def body_of(key: str) -> bytes:
    """``payload_of`` as the JSON bytes sent to the message brokers."""
    return json.dumps(payload_of(key), separators=(",", ":")).encode()


def key_of_body(data: bytes) -> str | None:
    """The key inside a stored message body (None for anything else)."""
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    key = obj.get("key") if isinstance(obj, dict) else None
    return key if isinstance(key, str) else None


@dataclass(frozen=True)
class Target:
    """Where a load process sends its work.

    ``kind`` is ``nats``, ``rabbitmq``, ``dqueue-http`` or ``dqueue-sdk``; ``urls`` the
    client addresses it may use (one for "this node only"); ``name`` the stream, queue or task
    type of the workload; ``workers`` the dqueue worker gateways (SDK path).
    """

    kind: str
    urls: tuple[str, ...]
    name: str
    workers: tuple[str, ...] = ()
    timeout_s: float = 5.0
    extra: dict[str, str] = field(default_factory=dict)


class BenchClient:
    """The operations of W1 to W4. Each raises on a failed or refused operation."""

    def enqueue(self, key: str, dedup: bool = False) -> None:
        """Enqueue one task; return once it is confirmed. ``dedup``: a retry of ``key`` must
        not store it twice (idempotency key / message id), used by W4."""
        raise NotImplementedError

    def enqueue_batch(self, keys: Sequence[str]) -> None:
        """Enqueue ``keys``; return once every one is confirmed."""
        raise NotImplementedError

    def lease_ack(self) -> bool:
        """Take one task and acknowledge it; False when none came within the wait."""
        raise NotImplementedError

    def read_back(self) -> set[str]:
        """Every key stored under the target's name."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connections."""


def make_client(target: Target) -> BenchClient:
    """The client for ``target.kind``."""
    if target.kind == "nats":
        return NatsClient(target)
    if target.kind == "rabbitmq":
        return RabbitClient(target)
    if target.kind == "dqueue-http":
        return DqueueHttpClient(target)
    if target.kind == "dqueue-sdk":
        return DqueueSdkClient(target)
    raise ValueError(f"unknown system {target.kind!r}")


# -- NATS JetStream ------------------------------------------------------------------------


class NatsClient(BenchClient):
    """nats-py: ``js.publish`` waits for the stream's PubAck (stored on a majority of R3)."""

    def __init__(self, target: Target) -> None:
        import nats

        self.target = target
        self.subject = f"{target.name}.tasks"
        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(nats.connect(
            servers=list(target.urls), connect_timeout=2, reconnect_time_wait=0.1,
            max_reconnect_attempts=-1, allow_reconnect=True))
        self.js = self.nc.jetstream(timeout=target.timeout_s)
        self._psub: Any = None

    def enqueue(self, key: str, dedup: bool = False) -> None:
        headers = {"Nats-Msg-Id": key} if dedup else None
        self.loop.run_until_complete(self.js.publish(self.subject, body_of(key),
                                                     headers=headers))

    def enqueue_batch(self, keys: Sequence[str]) -> None:
        async def batch() -> None:
            await asyncio.gather(*(self.js.publish(self.subject, body_of(k)) for k in keys))

        self.loop.run_until_complete(batch())

    def lease_ack(self) -> bool:
        import nats.errors

        if self._psub is None:
            self._psub = self.loop.run_until_complete(self.js.pull_subscribe(
                self.subject, durable=self.target.extra["durable"], stream=self.target.name))

        async def one() -> bool:
            try:
                msgs = await self._psub.fetch(1, timeout=1.0)
            except nats.errors.TimeoutError:
                return False
            # ack_sync waits for the server's confirmation, as dqueue's ack waits for its commit.
            await msgs[0].ack_sync(timeout=self.target.timeout_s)
            return True

        return self.loop.run_until_complete(one())

    def read_back(self) -> set[str]:
        import nats.errors

        async def retried(make: Any) -> Any:
            # Right after the kill the stream may still be electing: ask again for a while.
            deadline = time.monotonic() + READ_BACK_S
            while True:
                try:
                    return await make()
                except (nats.errors.Error, TimeoutError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)

        async def read() -> set[str]:
            info = await retried(lambda: self.js.stream_info(self.target.name))
            last = info.state.last_seq
            psub = await retried(lambda: self.js.pull_subscribe(
                self.subject, durable="readback", stream=self.target.name))
            keys: set[str] = set()
            seen_seq = 0
            while seen_seq < last:
                msgs = await retried(lambda: psub.fetch(1000, timeout=2.0))
                for msg in msgs:
                    seen_seq = max(seen_seq, msg.metadata.sequence.stream)
                    key = key_of_body(msg.data)
                    if key is not None:
                        keys.add(key)
                    await msg.ack()
            return keys

        return self.loop.run_until_complete(read())

    def close(self) -> None:
        # closing after a kill may fail; nothing to keep
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(asyncio.wait_for(self.nc.close(), 2.0))
        self.loop.close()


# -- RabbitMQ ------------------------------------------------------------------------------


class RabbitClient(BenchClient):
    """aiormq on a quorum queue: ``basic_publish`` on a confirm channel returns the broker's
    Basic.Ack, sent once a majority of the queue's members have the message fsynced.

    aiormq rather than pika: pika's blocking channel waits for each confirm before the next
    publish, so it cannot keep 100 publishes in flight for W2; aiormq gives each publish its
    own confirmation future, as nats-py does.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.loop = asyncio.new_event_loop()
        self.url = target.urls[0]
        self.conn: Any = None
        self.channel: Any = None
        self._deliveries: asyncio.Queue[Any] | None = None
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        import aiormq

        self.conn = await asyncio.wait_for(aiormq.connect(self.url), self.target.timeout_s)
        self.channel = await self.conn.channel(publisher_confirms=True)
        self._deliveries = None

    def _reopen(self) -> None:
        # the old connection is dropped either way
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(asyncio.wait_for(self.conn.close(), 1.0))
        self.loop.run_until_complete(self._open())

    async def _publish(self, key: str) -> None:
        import aiormq

        confirm = await self.channel.basic_publish(
            body_of(key), routing_key=self.target.name,
            properties=aiormq.spec.Basic.Properties(delivery_mode=2))
        if not isinstance(confirm, aiormq.spec.Basic.Ack):
            raise RuntimeError(f"publish not confirmed: {confirm!r}")

    def enqueue(self, key: str, dedup: bool = False) -> None:
        # AMQP has no deduplication: a W4 retry may store a key twice, which read_back's set
        # absorbs (W4 counts losses, not duplicates).
        try:
            self.loop.run_until_complete(
                asyncio.wait_for(self._publish(key), self.target.timeout_s))
        except Exception:
            self._reopen_quietly()
            raise

    def _reopen_quietly(self) -> None:
        # the next call tries again
        with contextlib.suppress(Exception):
            self._reopen()

    def enqueue_batch(self, keys: Sequence[str]) -> None:
        async def batch() -> None:
            await asyncio.gather(*(self._publish(k) for k in keys))

        self.loop.run_until_complete(asyncio.wait_for(batch(), self.target.timeout_s * 4))

    def lease_ack(self) -> bool:
        async def one() -> bool:
            if self._deliveries is None:
                self._deliveries = asyncio.Queue()
                # prefetch 1: the broker sends the next message only after the ack of this one
                # (a lease of one task).
                await self.channel.basic_qos(prefetch_count=1)
                await self.channel.basic_consume(self.target.name, self._deliveries.put,
                                                 no_ack=False)
            try:
                message = await asyncio.wait_for(self._deliveries.get(), 1.0)
            except TimeoutError:
                return False
            # AMQP's basic.ack has no reply; the next delivery waits for it (prefetch 1).
            await self.channel.basic_ack(message.delivery.delivery_tag)
            return True

        return self.loop.run_until_complete(one())

    def read_back(self) -> set[str]:
        async def read() -> set[str]:
            declared = await self.channel.queue_declare(self.target.name, passive=True)
            total = declared.message_count or 0
            keys: set[str] = set()
            got = 0
            queue: asyncio.Queue[Any] = asyncio.Queue()
            await self.channel.basic_qos(prefetch_count=1000)
            await self.channel.basic_consume(self.target.name, queue.put, no_ack=True)
            while got < total:
                message = await asyncio.wait_for(queue.get(), 10.0)
                got += 1
                key = key_of_body(message.body)
                if key is not None:
                    keys.add(key)
            return keys

        return self.loop.run_until_complete(read())

    def close(self) -> None:
        # closing after a kill may fail; nothing to keep
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(asyncio.wait_for(self.conn.close(), 2.0))
        self.loop.close()


# -- dqueue --------------------------------------------------------------------------------


class HttpError(RuntimeError):
    """A dqueue answer other than the expected status."""


class DqueueHttpClient(BenchClient):
    """Plain HTTP/1.1 with keep-alive (``http.client``), one request per operation, as a curl
    user would send them: no SDK, no batching beyond what the workload asks for."""

    def __init__(self, target: Target) -> None:
        self.target = target
        host, _, port = target.urls[0].removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.conn: http.client.HTTPConnection | None = None
        self.worker_id = f"bench-{uuid.uuid4().hex[:8]}"

    def _call(self, method: str, path: str, body: Any, expect: tuple[int, ...]) -> Any:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port,
                                                   timeout=self.target.timeout_s)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        if resp.status not in expect:
            raise HttpError(f"{method} {path}: {resp.status} {raw[:200]!r}")
        return json.loads(raw) if raw else None

    def _task(self, key: str, dedup: bool) -> dict[str, Any]:
        task: dict[str, Any] = {"type": self.target.name, "payload": payload_of(key)}
        if dedup:
            task["idempotency_key"] = key
        return task

    def enqueue(self, key: str, dedup: bool = False) -> None:
        self._call("POST", "/tasks", self._task(key, dedup), (200, 201))

    def enqueue_batch(self, keys: Sequence[str]) -> None:
        self._call("POST", "/tasks/batch", {"tasks": [self._task(k, False) for k in keys]},
                   (201,))

    def lease_ack(self) -> bool:
        task = self._call("POST", "/tasks/lease",
                          {"worker_id": self.worker_id, "types": [self.target.name]}, (200, 204))
        if task is None:
            return False
        self._call("POST", f"/tasks/{task['id']}/ack",
                   {"worker_id": self.worker_id, "lease_token": task["lease"]["token"]}, (200,))
        return True

    def read_back(self) -> set[str]:
        return read_back_http(self.target.urls[0], self.target.name)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def read_back_http(url: str, task_type: str) -> set[str]:
    """Every key of the pending tasks of ``task_type``, paged through ``GET /tasks``."""
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    keys: set[str] = set()
    cursor: str | None = None
    while True:
        path = f"/tasks?status=pending&type={task_type}&limit=1000"
        if cursor:
            path += f"&cursor={cursor}"
        conn.request("GET", path)
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status != 200:
            raise HttpError(f"GET {path}: {resp.status} {raw[:200]!r}")
        page = json.loads(raw)
        for task in page["tasks"]:
            payload = task.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("key"), str):
                keys.add(payload["key"])
        cursor = page.get("next_cursor")
        if not cursor:
            conn.close()
            return keys


class DqueueSdkClient(BenchClient):
    """The SDK as shipped, on its fastest transport, the worker gateway: ``ZmqProducer`` to
    enqueue (W1, W2, the preload of W3), ``ZmqWorkerClient`` to lease and ack. W4's producer
    (``dedup``) is the HTTP ``Client``, which follows leader hints across nodes through the
    follower it is given."""

    def __init__(self, target: Target) -> None:
        from dqueue.client import Client, RetryPolicy, ZmqProducer

        self.target = target
        self.client = Client(list(target.urls), timeout_s=target.timeout_s,
                             retry=RetryPolicy())
        # One producer per load process; linger 0: a W1 producer waits for each enqueue, so
        # there is nothing of its own to coalesce with.
        self.producer = ZmqProducer(list(target.workers), timeout_s=target.timeout_s)
        self.worker: Any = None

    def enqueue(self, key: str, dedup: bool = False) -> None:
        # The SDK always sends an idempotency key (a random one unless given).
        if dedup:
            self.client.enqueue(self.target.name, payload_of(key), idempotency_key=key)
            return
        self.producer.enqueue(self.target.name, payload_of(key))

    def enqueue_batch(self, keys: Sequence[str]) -> None:
        self.producer.enqueue_many([{"type": self.target.name, "payload": payload_of(k)}
                                    for k in keys])

    def lease_ack(self) -> bool:
        if self.worker is None:
            from dqueue.client import ZmqWorkerClient

            self.worker = ZmqWorkerClient(self.target.workers[0], timeout_s=self.target.timeout_s)
        tasks = self.worker.lease(1, types=[self.target.name], wait_seconds=1.0)
        if not tasks:
            return False
        self.worker.ack(tasks[0])
        return True

    def read_back(self) -> set[str]:
        return read_back_http(self.target.urls[0], self.target.name)

    def close(self) -> None:
        self.client.close()
        self.producer.close()
        if self.worker is not None:
            self.worker.close()
