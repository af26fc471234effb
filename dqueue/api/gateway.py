"""The ZeroMQ worker gateway: a ROUTER for workers in front of the local Raft process.

Workers connect a DEALER and speak the protocol of docs/worker-protocol.md. Every request becomes
one IPC ``cmd`` (docs/internals.md section 3) sent on the gateway's own DEALER, with replies
matched by request id, so that any number of requests (long-poll leases included) are in flight
at once on one thread. Sockets are created in ``run`` and used only by the thread running it.

Long-poll leases are forwarded in slices of at most ``lease_slice_ms``: an empty slice is
re-issued while the worker is alive and its wait lasts, so a worker that went silent (no
message for ``liveness_ms``) or said ``bye`` has its waiting requests dropped within one slice.
The gateway never leases more tasks for a request than its ``max_tasks``. Tasks that a slice
leased after its worker was dropped are handed back (released: pending now, no attempt spent);
tasks already delivered to a worker that then dies expire by the visibility timeout as usual.

Acks are coalesced (``dqueue/api/ack_hold.py`` says when held acks go): those that arrive from
any worker within ``ack_window_ms`` of the first one held go to the Raft process as one
``ack_batch`` command, so that under load each command carries what arrived during the previous
one's round trip, and a lone ack on an idle gateway still waits only the window. Each worker's
ack is answered from its own item of the result once the batch is committed and applied (a lone
ack goes as a plain ``ack``). One command instead of many is what pays: the Raft
process spends most of its time per command on IPC intake and answering (docs/performance.md).
An ``ack_many`` message carries many acks of one worker: its items join the held acks like lone
acks, and one ``acked`` reply answers them all, with a compact result per item (no task).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import zmq
from prometheus_client import CollectorRegistry, Counter, Gauge

from dqueue.api.ack_hold import ACK_WINDOW_MS, AckGroup, AckHold, HeldAck, batch_results, refusal
from dqueue.api.gateway_producer import enqueue_command_of, enqueued_body
from dqueue.api.worker_auth import (
    WORKER_ZAP_DOMAIN,
    GatewaySecurity,
    decide_worker,
    gateway_security,
    recv_worker_message,
)
from dqueue.api.worker_requests import (
    MAX_ACK_BATCH,
    RequestError,
    ack_items_of,
    command_of,
)
from dqueue.config import NodeConfig
from dqueue.protocol import ipc as ipc_codec
from dqueue.protocol import wire
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.kinds import PRODUCER_REQUESTS, WORKER_REQUESTS, WorkerKind
from dqueue.protocol.zap import ZapServer

log = logging.getLogger(__name__)

POLL_MS = 50
SWEEP_MS = 100
MAX_WAITING_PER_WORKER = 64
# Long-poll leases waiting at once on the whole gateway, all worker sockets together (16 sockets
# once parked 1,024). Beyond it a lease with a wait is refused ``too_many_requests`` (workers
# back off). The Raft process parks an empty lease without a log entry, so parked leases cost
# no commands while the queue stays empty.
MAX_WAITING_LEASES = 256
MAX_BURST = 256  # messages read from one socket before looking at the other
MAX_RID_CHARS = 64
REPLY_GRACE_MS = 1_000
# Largest worker message the gateway accepts: an ack_many of MAX_ACK_BATCH items of the longest
# ids and tokens is under 0.5 MiB. ZeroMQ drops the connection of a peer that sends more, before
# allocating it (a 100 MB frame once grew the API process to 331 MiB).
MAX_WORKER_MESSAGE_BYTES = 4 << 20
MAX_IPC_REPLY_BYTES = 256 << 20


@dataclass
class Pending:
    """One IPC command in flight for a worker request.

    ``wait_deadline`` is set for a long-poll lease: an empty slice before it is re-issued.
    ``reply_deadline`` bounds the wait for the Raft process's answer. ``members`` is set for an
    ``ack_batch``: the worker acks it carries, in the order of its items.
    """

    identity: bytes
    rid: Any
    kind: bytes
    cmd: dict[str, Any]
    reply_deadline: float
    wait_deadline: float | None = None
    dropped: bool = False
    members: list[HeldAck] | None = None


@dataclass
class Peer:
    """A connected worker socket (by ROUTER identity) and its waiting lease requests."""

    last_seen: float
    waiting: set[str] = field(default_factory=set)


def bind_endpoint(addr: str) -> str:
    """ZeroMQ bind endpoint of a ``host:port`` address (no host: every interface; port 0: any)."""
    if "://" in addr:
        return addr
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "*"
    return f"tcp://{host}:{'*' if port in ('', '0') else port}"


class WorkerGateway:
    """Serves ZeroMQ workers of one node (docs/internals.md section 5).

    Args:
        config: The node configuration (``worker_addr``, timeouts, the IPC endpoint).
        registry: Where the gateway registers its Prometheus metrics.
        lease_slice_ms: Longest single IPC wait of a long-poll lease.
        liveness_ms: Silence after which a worker's waiting leases are dropped.
        ack_window_ms: Longest an ack is held for others to share its ``ack_batch`` command
            (0: only the acks read in the same poll turn share it).
        max_waiting_leases: Most long-poll leases waiting at once, over all worker sockets.
        security: Who may connect (``dqueue.api.worker_auth``); by default from ``config``
            (CURVE worker keys with a secure folder, else loopback only unless insecure).

    Raises:
        PeerKeyError: the secure folder's keys are missing or malformed.
    """

    def __init__(
        self,
        config: NodeConfig,
        registry: CollectorRegistry,
        *,
        lease_slice_ms: int = 1_000,
        liveness_ms: int = 5_000,
        ack_window_ms: int = ACK_WINDOW_MS,
        max_waiting_leases: int = MAX_WAITING_LEASES,
        security: GatewaySecurity | None = None,
    ) -> None:
        self._config = config
        self.security = security or gateway_security(config)
        self._max_waiting_leases = max_waiting_leases
        self._waiting_count = 0  # Invariant: the Pending in self._pending with a wait_deadline
        self._lease_slice_ms = lease_slice_ms
        self._liveness_ms = liveness_ms
        self._acks = AckHold(ack_window_ms, MAX_ACK_BATCH)
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.endpoint: str | None = None  # the bound endpoint, once ``ready`` is set
        # Why the worker port could not be bound (``ready`` is set then too, and run returns).
        self.bind_error: str | None = None
        self._pending: dict[str, Pending] = {}
        self._peers: dict[bytes, Peer] = {}
        self._rid_prefix = os.urandom(4).hex()
        self._rids = itertools.count(1)
        requests = Counter("dqueue_gateway_requests", "Worker requests received, by kind",
                           ["kind"], registry=registry)
        # Children resolved once: labels() takes a lock and a lookup on every call.
        self._requests = {kind: requests.labels(kind.decode()) for kind in WORKER_REQUESTS}
        self._requests_unknown = requests.labels("unknown")
        self._dropped = Counter("dqueue_gateway_dropped",
                                "Messages dropped by the worker gateway, by reason",
                                ["reason"], registry=registry)
        self._waiting = Gauge("dqueue_gateway_waiting_leases",
                              "Long-poll lease requests waiting for tasks", registry=registry)
        self._workers = Gauge("dqueue_gateway_workers", "Worker sockets heard from recently",
                              registry=registry)
        self._handed_back = Counter("dqueue_gateway_tasks_handed_back",
                                    "Tasks leased for a departed worker and handed back",
                                    registry=registry)
        self._leased = Counter("dqueue_gateway_tasks_leased", "Tasks handed to ZeroMQ workers",
                               registry=registry)
        self._ack_commands = Counter("dqueue_gateway_ack_commands",
                                     "Commands that carried worker acks to the Raft process",
                                     registry=registry)
        self._handshakes = Counter("dqueue_gateway_handshakes",
                                   "Worker handshakes decided by the gateway's ZAP handler, by "
                                   "outcome (admitted, or the refusal's reason)", ["outcome"],
                                   registry=registry)
        self._handshakes_seen: dict[str, int] = {}

    def stop(self) -> None:
        """Ask ``run`` to return (within ``POLL_MS`` plus one burst). Thread-safe."""
        self._stop.set()

    def run(self) -> None:
        """Serve until ``stop``; owns its sockets for its whole life."""
        ctx = zmq.Context()
        # Bound before the ROUTER, in the gateway's own context: libzmq asks the ZAP handler of
        # the socket's context, and a CURVE server without one would admit any client key.
        zap = ZapServer(ctx, self.security.policy, decide_worker)
        router = ctx.socket(zmq.ROUTER)
        ipc = ctx.socket(zmq.DEALER)
        try:
            router.setsockopt(zmq.LINGER, 0)
            router.setsockopt(zmq.ROUTER_MANDATORY, 1)
            router.setsockopt(zmq.MAXMSGSIZE, MAX_WORKER_MESSAGE_BYTES)
            # Every handshake, NULL ones included, goes through the ZAP handler.
            router.setsockopt(zmq.ZAP_DOMAIN, WORKER_ZAP_DOMAIN.encode())
            router.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
            if self.security.secret_key:
                router.setsockopt(zmq.CURVE_SERVER, 1)
                router.setsockopt(zmq.CURVE_SECRETKEY, self.security.secret_key)
                router.setsockopt(zmq.CURVE_PUBLICKEY, self.security.public_key)
            try:
                router.bind(bind_endpoint(self._config.worker_addr))
            except zmq.ZMQError as exc:
                self.bind_error = str(exc)
                self.ready.set()
                return
            self.endpoint = router.getsockopt(zmq.LAST_ENDPOINT).decode()
            ipc.setsockopt(zmq.LINGER, 0)
            ipc.setsockopt(zmq.SNDHWM, 10_000)
            # The Raft process's largest answer to the gateway: a lease of 100 tasks at the
            # largest payload; a bigger message is a bug there, dropped here before allocation.
            ipc.setsockopt(zmq.MAXMSGSIZE, MAX_IPC_REPLY_BYTES)
            ipc.connect(self._config.ipc_endpoint())
            self.ready.set()
            log.info("worker gateway listening on %s", self.endpoint)
            self._loop(router, ipc, zap)
        finally:
            router.close(0)
            ipc.close(0)
            zap.close()
            ctx.term()

    # -- loop -------------------------------------------------------------------------

    def _loop(self, router: zmq.Socket, ipc: zmq.Socket, zap: ZapServer) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(ipc, zmq.POLLIN)
        poller.register(zap.socket, zmq.POLLIN)
        next_sweep = time.monotonic()
        while not self._stop.is_set():
            events = dict(poller.poll(self._acks.poll_ms(time.monotonic(), POLL_MS)))
            if zap.socket in events:
                zap.serve()
                self._count_handshakes(zap)
            if ipc in events:
                for _ in range(MAX_BURST):
                    try:
                        frames = ipc.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._handle_ipc(frames, router, ipc)
            if router in events:
                for _ in range(MAX_BURST):
                    try:
                        # With worker keys, the key's name: the only worker_id it may use.
                        frames, worker_name = recv_worker_message(router)
                    except zmq.Again:
                        break
                    self._handle_worker(frames, router, ipc, worker_name)
            now = time.monotonic()
            if self._acks.may_go(now):
                self._flush_acks(ipc, router, now)
            if now >= next_sweep:
                self._sweep(now, router)
                next_sweep = now + SWEEP_MS / 1000

    def _count_handshakes(self, zap: ZapServer) -> None:
        """Move the ZAP handler's tallies into ``dqueue_gateway_handshakes``."""
        for outcome, total in (("admitted", zap.admitted), *zap.refused.items()):
            seen = self._handshakes_seen.get(outcome, 0)
            if total > seen:
                self._handshakes.labels(outcome).inc(total - seen)
                self._handshakes_seen[outcome] = total

    # -- worker side ------------------------------------------------------------------

    def _handle_worker(self, frames: list[bytes], router: zmq.Socket, ipc: zmq.Socket,
                       worker_name: str = "") -> None:
        if len(frames) != 4:
            self._dropped.labels("malformed").inc()
            return
        identity = frames[0]
        try:
            kind, body = wire.decode(frames[1:])
        except wire.FrameError:
            self._dropped.labels("malformed").inc()
            return
        if not isinstance(body, dict):
            self._dropped.labels("malformed").inc()
            return
        now = time.monotonic()
        peer = self._peers.get(identity)
        if peer is None:
            peer = self._peers[identity] = Peer(last_seen=now)
            self._workers.set(len(self._peers))
        peer.last_seen = now
        self._requests.get(kind, self._requests_unknown).inc()
        rid = body.get("rid")
        if kind == WorkerKind.BYE:
            self._drop_peer(identity)
            return
        if not (rid is None or isinstance(rid, int | str)) or (
            isinstance(rid, str) and len(rid) > MAX_RID_CHARS
        ):
            self._send_error(router, identity, None, ErrorCode.INVALID_FIELD,
                             "rid must be an integer or a short string", "rid")
            return
        if kind == WorkerKind.ACK_MANY:
            self._handle_ack_many(identity, rid, body, router, ipc, now, worker_name,
                                  len(frames[3]))
            return
        try:
            if kind == WorkerKind.PING:
                self._send(router, identity, WorkerKind.PONG, {"rid": rid})
                return
            if kind in PRODUCER_REQUESTS:
                # Any admitted connection may enqueue (docs/security.md, "Worker keys").
                cmd, wait_ms = enqueue_command_of(kind, body, len(frames[3]),
                                                  self._config.max_body_bytes), 0
            else:
                cmd, wait_ms = command_of(kind, body, self._config.max_wait_ms, worker_name,
                                          self._config.max_result_bytes)
        except RequestError as exc:
            self._send_error(router, identity, rid, exc.code, exc.message, exc.field)
            return
        if kind == WorkerKind.LEASE and wait_ms > 0 and len(peer.waiting) >= MAX_WAITING_PER_WORKER:
            self._send_error(router, identity, rid, ErrorCode.TOO_MANY_REQUESTS,
                             f"at most {MAX_WAITING_PER_WORKER} waiting leases per worker")
            return
        if (kind == WorkerKind.LEASE and wait_ms > 0
                and self._waiting_count >= self._max_waiting_leases):
            self._dropped.labels("too_many_waiting").inc()
            self._send_error(router, identity, rid, ErrorCode.TOO_MANY_REQUESTS,
                             f"at most {self._max_waiting_leases} waiting leases on this node")
            return
        wait_deadline = now + wait_ms / 1000 if kind == WorkerKind.LEASE and wait_ms > 0 else None
        pending = Pending(identity, rid, kind, cmd, reply_deadline=0.0,
                          wait_deadline=wait_deadline)
        if kind == WorkerKind.ACK:
            item = {"id": cmd["id"], "worker_id": cmd["worker_id"], "token": cmd["token"]}
            if "result" in cmd:
                item["result"] = cmd["result"]
            self._hold_ack((pending, 0, item), ipc, router, now, len(frames[3]))
            return
        self._forward(pending, ipc, router, now)

    def _handle_ack_many(self, identity: bytes, rid: Any, body: dict[str, Any],
                         router: zmq.Socket, ipc: zmq.Socket, now: float,
                         worker_name: str, body_bytes: int) -> None:
        """Validate an ``ack_many`` (all or nothing) and hold each of its items."""
        try:
            items = ack_items_of(body, worker_name, self._config.max_result_bytes)
        except RequestError as exc:
            self._send_error(router, identity, rid, exc.code, exc.message, exc.field)
            return
        group = AckGroup(identity, rid, [None] * len(items), len(items))
        item_bytes = body_bytes // len(items)  # results make most of it: a share each
        for index, item in enumerate(items):
            self._hold_ack((group, index, item), ipc, router, now, item_bytes)

    def _hold_ack(self, held: HeldAck, ipc: zmq.Socket, router: zmq.Socket, now: float,
                  size_bytes: int) -> None:
        """Keep an ack for the next ``ack_batch``; send the batch once it is full (by count,
        or by the bytes its messages took: acks with results make large commands)."""
        if self._acks.hold(held, now, size_bytes):
            self._flush_acks(ipc, router, now)

    def _flush_acks(self, ipc: zmq.Socket, router: zmq.Socket, now: float) -> None:
        """Send the held acks as one command: a lone ``ack`` request's as a plain ``ack``,
        else an ``ack_batch``."""
        acks = self._acks.take()
        self._ack_commands.inc()
        if len(acks) == 1 and isinstance(acks[0][0], Pending):
            self._forward(acks[0][0], ipc, router, now)
            return
        batch = Pending(b"", None, _ACK_BATCH,
                        {"op": "ack_batch", "items": [item for _, _, item in acks]},
                        reply_deadline=0.0, members=acks)
        self._forward(batch, ipc, router, now)

    def _forward(self, pending: Pending, ipc: zmq.Socket, router: zmq.Socket, now: float) -> None:
        """Send ``pending`` as one IPC command (a lease wait: its next slice)."""
        ipc_rid = f"{self._rid_prefix}-{next(self._rids)}"
        timeout_ms = self._config.request_timeout_ms
        wait_ms = 0
        if pending.wait_deadline is not None:
            wait_ms = max(0, min(self._lease_slice_ms,
                                 int((pending.wait_deadline - now) * 1000)))
        pending.reply_deadline = now + (timeout_ms + wait_ms + REPLY_GRACE_MS) / 1000
        try:
            ipc.send_multipart(ipc_codec.encode_cmd(ipc_rid, pending.cmd, timeout_ms, wait_ms),
                               zmq.NOBLOCK)
        except zmq.Again:
            self._fail(router, pending, ErrorCode.UNAVAILABLE,
                       "the Raft process is not accepting requests")
            return
        self._pending[ipc_rid] = pending
        if pending.kind in _ACK_COMMAND_KINDS:
            self._acks.command_sent()
        if pending.wait_deadline is not None:
            peer = self._peers.get(pending.identity)
            if peer is not None:
                peer.waiting.add(ipc_rid)
            self._waiting.inc()
            self._waiting_count += 1

    # -- Raft side --------------------------------------------------------------------

    def _handle_ipc(self, frames: list[bytes], router: zmq.Socket, ipc: zmq.Socket) -> None:
        reply = ipc_codec.decode_reply(frames)
        if reply is None:
            self._dropped.labels("malformed_ipc").inc()
            return
        pending = self._take(reply.rid)
        if pending is None:
            self._dropped.labels("stale_reply").inc()
            return
        if pending.kind == _HANDBACK:
            return  # nobody waits for it; a failed hand-back simply expires
        if isinstance(reply, ipc_codec.ErrorReply):
            self._fail(router, pending, reply.code, reply.message,
                       leader_id=reply.leader_id, leader_http=reply.leader_http)
            return
        outcome = ipc_codec.outcome_of(reply)
        if outcome is None:
            self._dropped.labels("malformed_ipc").inc()
            self._fail(router, pending, ErrorCode.UNAVAILABLE,
                       "unreadable answer from the Raft process")
            return
        if pending.members is None:
            self._answer(pending, outcome, router, ipc)
            return
        results = batch_results(outcome, len(pending.members))
        if results is None:
            self._dropped.labels("malformed_ipc").inc()
            self._fail(router, pending, ErrorCode.UNAVAILABLE,
                       "unreadable answer from the Raft process")
            return
        for (owner, position, _), result in zip(pending.members, results, strict=True):
            # Each worker's ack is answered from its own item (a refused batch: the same refusal).
            if isinstance(owner, Pending):
                self._answer(owner, result, router, ipc)
            else:
                self._settle_group(owner, position, refusal(result), router)

    def _settle_group(self, group: AckGroup, position: int, result: dict[str, str] | None,
                      router: zmq.Socket) -> None:
        """Record one item's result; answer the ``ack_many`` once every item has one."""
        if group.settle(position, result):
            self._send(router, group.identity, WorkerKind.ACKED, {"rid": group.rid,
                                                                  "results": group.results})

    def _answer(self, pending: Pending, outcome: dict[str, Any], router: zmq.Socket,
                ipc: zmq.Socket) -> None:
        """Answer one worker request from the outcome of its committed command."""
        if not outcome.get("ok"):
            self._send_error(router, pending.identity, pending.rid,
                             str(outcome.get("code") or ErrorCode.INVALID),
                             str(outcome.get("message")))
            return
        value = outcome.get("value")
        if not isinstance(value, dict):
            value = {}
        if pending.kind in PRODUCER_REQUESTS:
            reply = enqueued_body(pending.rid, value)
            if reply is None:
                self._dropped.labels("malformed_ipc").inc()
                self._send_error(router, pending.identity, pending.rid, ErrorCode.UNAVAILABLE,
                                 "unreadable answer from the Raft process")
                return
            self._send(router, pending.identity, WorkerKind.ENQUEUED, reply)
            return
        if pending.kind == WorkerKind.LEASE:
            tasks = value.get("tasks") or []
            if not (isinstance(tasks, list) and all(isinstance(t, dict) for t in tasks)):
                self._dropped.labels("malformed_ipc").inc()
                self._send_error(router, pending.identity, pending.rid, ErrorCode.UNAVAILABLE,
                                 "unreadable answer from the Raft process")
                return
            now = time.monotonic()
            if (not tasks and not pending.dropped and pending.wait_deadline is not None
                    and now < pending.wait_deadline - 0.005):
                self._forward(pending, ipc, router, now)
                return
            if pending.dropped:
                # Leased for a worker that left: hand the tasks back so they are redelivered
                # at once instead of after the visibility timeout.
                for task in tasks:
                    self._hand_back(task, ipc, router)
                return
            self._leased.inc(len(tasks))
            self._send(router, pending.identity, WorkerKind.TASKS,
                       {"rid": pending.rid, "tasks": tasks})
            return
        self._send(router, pending.identity, WorkerKind.RES, {"rid": pending.rid,
                                                       "task": value.get("task")})

    def _hand_back(self, task: Any, ipc: zmq.Socket, router: zmq.Socket) -> None:
        lease = task.get("lease") if isinstance(task, dict) else None
        if not isinstance(lease, dict):
            return
        # A release: pending at once, and the attempt the lease counted is not spent.
        cmd = {"op": "release", "id": task.get("id"), "worker_id": lease.get("worker_id"),
               "token": lease.get("token")}
        self._handed_back.inc()
        self._forward(Pending(b"", None, _HANDBACK, cmd, 0.0, dropped=True), ipc, router,
                      time.monotonic())

    def _take(self, ipc_rid: str) -> Pending | None:
        pending = self._pending.pop(ipc_rid, None)
        if pending is not None and pending.kind in _ACK_COMMAND_KINDS:
            self._acks.command_done()
        if pending is not None and pending.wait_deadline is not None:
            self._waiting.dec()
            self._waiting_count -= 1
            peer = self._peers.get(pending.identity)
            if peer is not None:
                peer.waiting.discard(ipc_rid)
        return pending

    # -- housekeeping -----------------------------------------------------------------

    def _sweep(self, now: float, router: zmq.Socket) -> None:
        """Drop silent workers' waiting leases; answer requests the Raft process never did."""
        silent = [identity for identity, peer in self._peers.items()
                  if (now - peer.last_seen) * 1000 > self._liveness_ms]
        for identity in silent:
            self._drop_peer(identity)
        expired = [rid for rid, p in self._pending.items() if now > p.reply_deadline]
        for ipc_rid in expired:
            pending = self._take(ipc_rid)
            if pending is not None and not pending.dropped:
                self._fail(router, pending, ErrorCode.TIMEOUT, "no answer from the Raft process")

    def _drop_peer(self, identity: bytes) -> None:
        peer = self._peers.pop(identity, None)
        self._workers.set(len(self._peers))
        if peer is None:
            return
        for ipc_rid in peer.waiting:
            pending = self._pending.get(ipc_rid)
            if pending is not None:
                # The slice in flight may still lease tasks: they are sent if the worker is
                # there after all, and otherwise expire like any other lease.
                pending.dropped = True

    def _send(self, router: zmq.Socket, identity: bytes, kind: bytes, body: Any) -> None:
        try:
            router.send_multipart([identity, *wire.encode(kind, body)], zmq.NOBLOCK)
        except (zmq.Again, zmq.ZMQError):
            # Unknown identity (worker gone) or its queue full: nothing else to do.
            self._dropped.labels("undeliverable").inc()

    def _fail(self, router: zmq.Socket, pending: Pending, code: str, message: str,
              **leader: str | None) -> None:
        """Answer with an error the request of ``pending``, or each of the acks it carries."""
        if pending.members is None:
            self._send_error(router, pending.identity, pending.rid, code, message, **leader)
            return
        for owner, position, _ in pending.members:
            if isinstance(owner, Pending):
                self._send_error(router, owner.identity, owner.rid, code, message, **leader)
            else:
                self._settle_group(owner, position, {"code": code, "message": message}, router)

    def _send_error(
        self,
        router: zmq.Socket,
        identity: bytes,
        rid: Any,
        code: str,
        message: str,
        field: str | None = None,
        *,
        leader_id: str | None = None,
        leader_http: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"rid": rid, "code": code, "message": message}
        optional = {"field": field, "leader_id": leader_id, "leader_http": leader_http}
        body.update((k, v) for k, v in optional.items() if v is not None)
        self._send(router, identity, WorkerKind.ERR, body)


# The gateway's own kinds of pending commands, beside the workers' requests it forwards.
_ACK_BATCH = b"ack_batch"  # held acks of any workers, sent as one command
_HANDBACK = b"handback"  # tasks leased for a departed worker, handed back
# The pending kinds that are ack commands.
_ACK_COMMAND_KINDS = frozenset({WorkerKind.ACK, _ACK_BATCH})
