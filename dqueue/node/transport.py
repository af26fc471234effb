"""Peer transport: ZeroMQ between the Raft processes of the nodes.

Each node binds one ROUTER at its ``raft_addr`` and connects one DEALER to every peer's ROUTER,
with its own member id as the DEALER identity. All sockets belong to the one thread of the Raft
process loop, and so does the ZAP handler (``zap.py``) that admits or refuses every connection
to the ROUTER before its handshake completes.

- With keys (``PeerKeys``, ``--secure-dir``) the ROUTER is a CURVE server and every DEALER a
  CURVE client with this member's key pair: traffic is encrypted and both ends authenticated.
  The ZAP handler admits only members' public keys and names the member as the connection's
  User-Id; the sender of every message is that authenticated member, whatever routing identity
  the connection claims (a message whose identity differs is dropped as forged).
- Without keys, only NULL connections from loopback addresses are admitted, and the sender is
  the routing identity the connection claims: any local process can pose as a member
  (docs/security.md).

Refused handshakes (by the ZAP handler, or failed before it: a NULL client on a CURVE port,
garbage) and forged messages are counted in ``TransportCounters.rejected``.

Sends never block: a DEALER has a bounded queue (high-water mark) and ``ZMQ_IMMEDIATE``, so
messages to a peer that is down are dropped at once and counted (Raft retransmits), and memory
stays bounded however long a peer is away. ZeroMQ reconnects on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq

from dqueue.keys import PeerKeys
from dqueue.protocol import wire
from dqueue.protocol.frames import recv_frames, send_frames
from dqueue.protocol.member_context import is_member_id
from dqueue.protocol.zap import PEER_ZAP_DOMAIN, PeerPolicy, ZapServer

_NOBLOCK = int(zmq.NOBLOCK)
# Handshakes that fail before the ZAP handler is asked (a NULL client on a CURVE port, a
# CURVE hello that does not decrypt, bytes that are not ZMTP); ZAP refusals are counted there.
_HANDSHAKE_FAILED_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
_MONITOR_ENDPOINT = "inproc://dqueue-peer-monitor-{}"
# One per DEALER: its connection to that peer closed (the peer's process died or closed it).
_DEALER_MONITOR_ENDPOINT = "inproc://dqueue-peer-dealer-{}-{}"

# Messages queued per peer before sends to it are dropped. Raft sends at most
# max_inflight_msgs appends plus heartbeats to a peer, so this leaves room for a burst.
PEER_SEND_HWM = 2_048
# Largest message the ROUTER accepts; bigger ones (garbage, or a misconfigured chunk size)
# make ZeroMQ drop the connection instead of allocating.
MAX_MESSAGE_BYTES = 64 << 20
RECONNECT_IVL_MS = 50
RECONNECT_IVL_MAX_MS = 500
# Events read per monitor per call (failed handshakes, closed connections).
MAX_MONITOR_EVENTS = 256
# Why a connection or a message was rejected: the ZAP refusals (zap.py), a handshake that
# failed before ZAP, a connection whose routing identity is not its key's member, a message
# whose body names another sender than its connection (counted by the Raft process).
REJECT_REASONS = ("unknown_key", "worker_key", "mechanism", "not_loopback", "malformed",
                  "unknown_domain", "handshake_failed", "forged_identity", "forged_sender")


def _member_id_of(identity: bytes) -> str | None:
    """The member id a routing identity claims, or None when it cannot be one."""
    try:
        text = identity.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if is_member_id(text) else None


def _monitor_events(monitor: zmq.Socket) -> int:
    """Read the events waiting on a socket monitor's PAIR, at most MAX_MONITOR_EVENTS, without
    blocking; how many were well formed (an event frame of 6 bytes and an endpoint)."""
    count = 0
    for _ in range(MAX_MONITOR_EVENTS):
        try:
            frames = recv_frames(monitor)
        except zmq.Again:
            break
        count += len(frames) == 2 and len(frames[0]) == 6
    return count


def tcp_endpoint(addr: str, bind: bool) -> str:
    """Map a ``host:port`` address (host optional) to a ZeroMQ TCP endpoint.

    An empty host means every interface when binding and the loopback when connecting.
    """
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {addr!r} is not host:port")
    if not host:
        host = "*" if bind else "127.0.0.1"
    return f"tcp://{host}:{port}"


@dataclass
class TransportCounters:
    """What the transport dropped, by reason (exported as metrics)."""

    malformed: int = 0
    unknown_peer: int = 0
    send_dropped: int = 0
    sent: int = 0
    received: int = 0
    # Refused handshakes and forged messages, by reason (ZAP refusals are added on export).
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        """Count one refused handshake or dropped forged message."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


class PeerTransport:
    """The ROUTER and the per-peer DEALERs of one node.

    Args:
        context: the ZeroMQ context of the Raft process.
        node_id: this node's member id (the DEALER identity).
        bind_addr: this node's raft address (``host:port``).
        peers: member id -> raft address of every other member.
        keys: this node's CURVE keys; None for peers without encryption or authentication.
        any_address: without keys, admit peers from any address (``--insecure``), not only
            from loopback.

    Raises:
        zmq.ZMQError: an address cannot be bound (or the context has a ZAP handler already).
    """

    def __init__(
        self, context: zmq.Context, node_id: str, bind_addr: str, peers: Mapping[str, str],
        keys: PeerKeys | None = None, any_address: bool = False,
    ) -> None:
        self.node_id = node_id
        self.secure = keys is not None
        self.counters = TransportCounters()
        # Bound before the ROUTER: a CURVE server with no ZAP handler admits any client key.
        self.zap = ZapServer(context, PeerPolicy(
            secure=keys is not None, any_address=any_address,
            member_keys={k: m for m, k in keys.members.items()} if keys else {},
            worker_keys={k: w for w, k in keys.workers.items()} if keys else {},
        ))
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.router.setsockopt(zmq.RCVHWM, PEER_SEND_HWM * 4)
        # A restarted peer reconnects with the same identity before the old connection is
        # noticed as dead; hand the identity over to the new connection instead of ignoring it.
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # Every handshake, NULL ones included, goes through the ZAP handler; none completes
        # without it.
        self.router.setsockopt(zmq.ZAP_DOMAIN, PEER_ZAP_DOMAIN.encode())
        self.router.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        if keys is not None:
            self.router.setsockopt(zmq.CURVE_SERVER, 1)
            self.router.setsockopt(zmq.CURVE_SECRETKEY, keys.secret_key)
            self.router.setsockopt(zmq.CURVE_PUBLICKEY, keys.public_key)
        monitor_endpoint = _MONITOR_ENDPOINT.format(id(self))
        self.router.monitor(monitor_endpoint, _HANDSHAKE_FAILED_EVENTS)
        self.monitor = context.socket(zmq.PAIR)
        self.monitor.setsockopt(zmq.LINGER, 0)
        self.monitor.connect(monitor_endpoint)
        self.router.bind(tcp_endpoint(bind_addr, bind=True))
        self._context = context
        self._keys = keys
        self._any_address = any_address
        self._dealers: dict[str, zmq.Socket] = {}
        # peer id -> the PAIR that gets its DEALER's disconnection events (lost_peers).
        self._dealer_monitors: dict[str, zmq.Socket] = {}
        # peer id -> (raft address, its public key or None) of each DEALER.
        self._targets: dict[str, tuple[str, bytes | None]] = {}
        self._known: dict[bytes, str] = {}
        # A member that joins hears from a leader before it knows its configuration: until
        # then any member id is heard (secure: any key of its key folder, which ZAP checks).
        self.hear_any_member = False
        self.set_peers(peers, dict(keys.members) if keys else None)

    def set_peers(self, peers: Mapping[str, str], member_keys: Mapping[str, bytes] | None,
                  hear_any_member: bool = False, heard: Iterable[str] = ()) -> None:
        """Connect to exactly ``peers`` (member id -> raft address) and, with keys, admit
        exactly the public keys of ``member_keys`` (member id -> Z85 key; a member without a
        key gets no DEALER). A removed peer's DEALER is closed and its messages are dropped
        from then on; its key is refused at its next handshake (docs/security.md).

        Args:
            peers: the members to send to (this node is skipped).
            member_keys: the key of each member (with keys); None without keys.
            hear_any_member: take messages from any member id (a member that joins, before
                it knows its configuration); secure mode still admits only known keys.
            heard: members to take messages from though no address is known for them (no
                DEALER): their hello tells it (peer_book.py). Secure: only those with a key.
        """
        wanted: dict[str, tuple[str, bytes | None]] = {}
        for peer_id, addr in sorted(peers.items()):
            if peer_id == self.node_id:
                continue
            key = member_keys.get(peer_id) if member_keys is not None else None
            if self.secure and key is None:
                continue
            wanted[peer_id] = (addr, key)
        for peer_id in [p for p in self._dealers if self._targets.get(p) != wanted.get(p)]:
            self._close_dealer(peer_id)
            del self._targets[peer_id]
        for peer_id, (addr, key) in wanted.items():
            if peer_id not in self._dealers:
                self._dealers[peer_id] = self._dealer(peer_id, addr, key)
                self._targets[peer_id] = (addr, key)
        self._known = {peer_id.encode(): peer_id for peer_id in self._dealers}
        for peer_id in heard:
            if peer_id != self.node_id and (not self.secure or (
                    member_keys is not None and peer_id in member_keys)):
                self._known[peer_id.encode()] = peer_id
        self.hear_any_member = hear_any_member
        if self._keys is not None and member_keys is not None:
            admitted = {k: m for m, k in member_keys.items() if m != self.node_id}
            admitted[self._keys.public_key] = self.node_id
            self.zap.policy = PeerPolicy(
                secure=True, any_address=self._any_address, member_keys=admitted,
                worker_keys={k: w for w, k in self._keys.workers.items()})
            if hear_any_member:
                self._known.update({m.encode(): m for m in member_keys})

    def _close_dealer(self, peer_id: str) -> None:
        dealer = self._dealers.pop(peer_id)
        dealer.disable_monitor()
        self._dealer_monitors.pop(peer_id).close(0)
        dealer.close(0)

    def _dealer(self, peer_id: str, addr: str, server_key: bytes | None) -> zmq.Socket:
        dealer = self._context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, self.node_id.encode())
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.SNDHWM, PEER_SEND_HWM)
        dealer.setsockopt(zmq.IMMEDIATE, 1)
        dealer.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        dealer.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        dealer.setsockopt(zmq.TCP_KEEPALIVE, 1)
        if self._keys is not None and server_key is not None:
            dealer.setsockopt(zmq.CURVE_SECRETKEY, self._keys.secret_key)
            dealer.setsockopt(zmq.CURVE_PUBLICKEY, self._keys.public_key)
            dealer.setsockopt(zmq.CURVE_SERVERKEY, server_key)
        endpoint = _DEALER_MONITOR_ENDPOINT.format(id(self), peer_id)
        dealer.monitor(endpoint, zmq.EVENT_DISCONNECTED)
        monitor = self._context.socket(zmq.PAIR)
        monitor.setsockopt(zmq.LINGER, 0)
        monitor.connect(endpoint)
        self._dealer_monitors[peer_id] = monitor
        dealer.connect(tcp_endpoint(addr, bind=False))
        return dealer

    def lost_peers(self) -> list[str]:
        """The peers whose connection closed since the last call (read without blocking).

        A closed TCP connection is what a peer's crash looks like from here when its machine
        stays up: the node tells the Raft core at once (``Raft.peer_lost``) rather than
        waiting a whole election timeout for the leader's silence.
        """
        return [peer_id for peer_id, monitor in self._dealer_monitors.items()
                if _monitor_events(monitor)]

    @property
    def control_sockets(self) -> list[zmq.Socket]:
        """The sockets besides the ROUTER that the loop polls (ZAP handler, monitor)."""
        return [self.zap.socket, self.monitor]

    def serve_control(self) -> None:
        """Answer waiting ZAP requests and count failed handshakes; never blocks."""
        self.zap.serve()
        for _ in range(_monitor_events(self.monitor)):
            self.counters.reject("handshake_failed")

    def rejected_by_reason(self) -> dict[str, int]:
        """Refused handshakes and forged messages, by reason (ZAP refusals included; every
        reason of REJECT_REASONS present, at 0 when none happened)."""
        out = dict.fromkeys(REJECT_REASONS, 0)
        out.update(self.counters.rejected)
        for reason, count in self.zap.refused.items():
            out[reason] = out.get(reason, 0) + count
        return out

    @property
    def peer_ids(self) -> list[str]:
        """The ids of the other members, sorted."""
        return sorted(self._dealers)

    def send(self, peer_id: str, kind: bytes, body: Any) -> bool:
        """Queue one message to a peer without blocking; False (and counted) if dropped."""
        dealer = self._dealers.get(peer_id)
        if dealer is None:
            self.counters.send_dropped += 1
            return False
        return self.send_packed(peer_id, kind, wire.pack(body))

    def send_packed(self, peer_id: str, kind: bytes, packed_body: bytes) -> bool:
        """Like ``send`` with a body already msgpack-encoded (one encoding for many peers)."""
        dealer = self._dealers.get(peer_id)
        if dealer is None:
            self.counters.send_dropped += 1
            return False
        try:
            send_frames(dealer, wire.encode_packed(kind, packed_body))
        except zmq.Again:
            self.counters.send_dropped += 1
            return False
        self.counters.sent += 1
        return True

    def recv(self) -> tuple[str, bytes, Any] | None:
        """Receive one waiting message as ``(sender id, kind, body)`` without blocking.

        Returns None when the message was dropped (malformed, or from an identity that is not
        a member); drops are counted, never raised.

        Raises:
            zmq.Again: nothing is waiting.
        """
        if self.secure:
            # The member is the one whose key the ZAP handler admitted (its User-Id, attached
            # by libzmq to every frame of the connection), not the identity it claims.
            frame = self.router.recv(_NOBLOCK, copy=False)
            try:
                member = frame.get("User-Id").encode()
            except zmq.ZMQError:
                member = b""
            frames = [frame.bytes]
            while frame.more:
                frame = self.router.recv(_NOBLOCK, copy=False)
                frames.append(frame.bytes)
            sender = self._known.get(member) if len(frames) > 1 else None
            if sender is None:
                self.counters.unknown_peer += 1
                return None
            if frames[0] != member:
                # A member's key with another member's routing identity.
                self.counters.reject("forged_identity")
                return None
        else:
            frames = recv_frames(self.router)
            # The sender first: anything from an identity that is not a member is "unknown",
            # whatever it contains; only members' messages are judged on their framing.
            sender = self._known.get(frames[0]) if len(frames) > 1 else None
            if sender is None and self.hear_any_member and len(frames) > 1:
                sender = _member_id_of(frames[0])
            if sender is None:
                self.counters.unknown_peer += 1
                return None
        try:
            kind, body = wire.decode(frames[1:])
        except wire.FrameError:
            self.counters.malformed += 1
            return None
        self.counters.received += 1
        return sender, kind, body

    def close(self) -> None:
        """Close every socket (again: nothing)."""
        if self.router.closed:
            return
        for peer_id in list(self._dealers):
            self._close_dealer(peer_id)
        self.router.disable_monitor()
        self.monitor.close(0)
        self.router.close(0)
        self.zap.close()
