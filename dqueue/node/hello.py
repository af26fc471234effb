"""The hello each node sends its peers: its HTTP address, for leader hints and ``GET /cluster``,
and its raft address, for a peer that has none for it (peer_book.py: a member bootstrapped by
``--peers`` is in no configuration context, so a member that joined later learns where to
answer it from its hello).

Sent every tick to each peer until a send to it succeeded (sends to a peer not connected yet
are dropped), then every ``HELLO_INTERVAL_MS``; a member added online is greeted as soon as
the transport connects to it.
"""

from __future__ import annotations

from typing import Any

import msgpack

from dqueue.node.transport import PeerTransport
from dqueue.node.views import WILDCARD_HOSTS
from dqueue.protocol.kinds import PeerKind
from dqueue.protocol.member_context import check_address

HELLO_INTERVAL_MS = 1_000


class Hellos:
    """Greets the peers of one node.

    Args:
        http_addr: this node's HTTP address, as configured.
        raft_addr: where peers reach this node's raft transport; not announced when its host
            is a wildcard (a bind-all address no peer can connect to).
    """

    def __init__(self, http_addr: str, raft_addr: str) -> None:
        body = {"http_addr": http_addr}
        if raft_addr.rpartition(":")[0] not in WILDCARD_HOSTS:
            body["raft_addr"] = raft_addr
        self._packed = msgpack.packb(body, use_bin_type=True)
        self._next_ms = 0.0
        self._done: set[str] = set()

    def on_tick(self, now: float, transport: PeerTransport) -> None:
        """Send the hellos due at ``now`` (monotonic ms)."""
        periodic = now >= self._next_ms
        if periodic:
            self._next_ms = now + HELLO_INTERVAL_MS
        peers = transport.peer_ids
        if not periodic and self._done.issuperset(peers):
            return
        for peer in peers:
            if (periodic or peer not in self._done) and transport.send_packed(
                    peer, PeerKind.HELLO, self._packed):
                self._done.add(peer)


def hello_raft_addr(body: Any) -> str | None:
    """The raft address a peer's hello announces (``host:port``), or None when it announces
    none or anything else. Any value is accepted without raising."""
    addr = body.get("raft_addr") if type(body) is dict else None
    if addr is None:
        return None
    try:
        return check_address(addr, "raft_addr")
    except ValueError:
        return None
