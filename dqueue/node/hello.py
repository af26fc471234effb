"""The hello each node sends its peers: its HTTP address, for leader hints and ``GET /cluster``.

Sent every tick to each peer until a send to it succeeded (sends to a peer not connected yet
are dropped), then every ``HELLO_INTERVAL_MS``; a member added online is greeted as soon as
the transport connects to it.
"""

from __future__ import annotations

import msgpack

from dqueue.node.transport import PeerTransport
from dqueue.protocol.kinds import PeerKind

HELLO_INTERVAL_MS = 1_000


class Hellos:
    """Greets the peers of one node.

    Args:
        http_addr: this node's HTTP address, as configured.
    """

    def __init__(self, http_addr: str) -> None:
        self._packed = msgpack.packb({"http_addr": http_addr}, use_bin_type=True)
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
