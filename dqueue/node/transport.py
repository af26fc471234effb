"""Peer transport: ZeroMQ between the Raft processes of the nodes.

Each node binds one ROUTER at its ``raft_addr`` and connects one DEALER to every peer's ROUTER,
with its own member id as the DEALER identity. A message from A to B therefore leaves A's DEALER
for B and arrives on B's ROUTER prefixed with the identity ``A``: the receiver knows the sender
without trusting the body. All sockets belong to the one thread of the Raft process loop.

Sends never block: a DEALER has a bounded queue (high-water mark) and ``ZMQ_IMMEDIATE``, so
messages to a peer that is down are dropped at once and counted (Raft retransmits), and memory
stays bounded however long a peer is away. ZeroMQ reconnects on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq

from dqueue import wire
from dqueue.node.frames import recv_frames, send_frames

# Messages queued per peer before sends to it are dropped. Raft sends at most
# max_inflight_msgs appends plus heartbeats to a peer, so this leaves room for a burst.
PEER_SEND_HWM = 2_048
# Largest message the ROUTER accepts; bigger ones (garbage, or a misconfigured chunk size)
# make ZeroMQ drop the connection instead of allocating.
MAX_MESSAGE_BYTES = 64 << 20
RECONNECT_IVL_MS = 50
RECONNECT_IVL_MAX_MS = 500


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
    by_kind: dict[str, int] = field(default_factory=dict)


class PeerTransport:
    """The ROUTER and the per-peer DEALERs of one node.

    Args:
        context: the ZeroMQ context of the Raft process.
        node_id: this node's member id (the DEALER identity).
        bind_addr: this node's raft address (``host:port``).
        peers: member id -> raft address of every other member.
    """

    def __init__(
        self, context: zmq.Context, node_id: str, bind_addr: str, peers: Mapping[str, str]
    ) -> None:
        self.node_id = node_id
        self.counters = TransportCounters()
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.router.setsockopt(zmq.RCVHWM, PEER_SEND_HWM * 4)
        # A restarted peer reconnects with the same identity before the old connection is
        # noticed as dead; hand the identity over to the new connection instead of ignoring it.
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.router.bind(tcp_endpoint(bind_addr, bind=True))
        self._dealers: dict[str, zmq.Socket] = {}
        for peer_id, addr in sorted(peers.items()):
            if peer_id == node_id:
                continue
            dealer = context.socket(zmq.DEALER)
            dealer.setsockopt(zmq.IDENTITY, node_id.encode())
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.setsockopt(zmq.SNDHWM, PEER_SEND_HWM)
            dealer.setsockopt(zmq.IMMEDIATE, 1)
            dealer.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
            dealer.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
            dealer.setsockopt(zmq.TCP_KEEPALIVE, 1)
            dealer.connect(tcp_endpoint(addr, bind=False))
            self._dealers[peer_id] = dealer
        self._known = {peer_id.encode(): peer_id for peer_id in self._dealers}

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
        return self.send_packed(peer_id, kind, msgpack.packb(body, use_bin_type=True))

    def send_packed(self, peer_id: str, kind: bytes, packed_body: bytes) -> bool:
        """Like ``send`` with a body already msgpack-encoded (one encoding for many peers)."""
        dealer = self._dealers.get(peer_id)
        if dealer is None:
            self.counters.send_dropped += 1
            return False
        try:
            send_frames(dealer, (wire.WIRE_VERSION, kind, packed_body))
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
        frames = recv_frames(self.router)
        # The sender first: anything from an identity that is not a member is "unknown",
        # whatever it contains; only members' messages are judged on their framing.
        sender = self._known.get(frames[0]) if len(frames) > 1 else None
        if sender is None:
            self.counters.unknown_peer += 1
            return None
        try:
            kind, body = wire.decode(frames[1:])
        except wire.FrameError:
            self.counters.malformed += 1
            return None
        self.counters.received += 1
        name = kind.decode("ascii", "replace")
        self.counters.by_kind[name] = self.counters.by_kind.get(name, 0) + 1
        return sender, kind, body

    def close(self) -> None:
        """Close every socket."""
        for dealer in self._dealers.values():
            dealer.close(0)
        self.router.close(0)
