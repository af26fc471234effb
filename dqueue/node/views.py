"""What the Raft process shows of itself: members' HTTP addresses, and the figures behind the
local reads (health, cluster, stats) and the flat metrics map that the API process exports.

Nothing here holds the process: the process builds a ``NodeFigures`` (a snapshot of its figures
at one moment) and these functions render it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dqueue.node.queries import NodeView
from dqueue.raft import Role

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def advertised_http(http_addr: str, raft_addr: str) -> str:
    """Where clients reach a member's HTTP API: its bind address, with a bind-all host
    (``:8080``, ``0.0.0.0:8080``) replaced by the host of its raft address."""
    host, _, port = http_addr.rpartition(":")
    if host in WILDCARD_HOSTS:
        return raft_addr.rpartition(":")[0] + ":" + port
    return http_addr


# The longest HTTP address a peer's hello may announce.
MAX_HTTP_ADDR_CHARS = 255


def hello_http_addr(body: Any) -> str | None:
    """The HTTP address a peer's hello announces (``{"http_addr": "host:port"}``), or None
    when the body is anything else: printable ASCII, at most MAX_HTTP_ADDR_CHARS, with a
    port. Any value is accepted without raising."""
    addr = body.get("http_addr") if type(body) is dict else None
    if type(addr) is not str or not 0 < len(addr) <= MAX_HTTP_ADDR_CHARS:
        return None
    port = addr.rpartition(":")[2]
    if not (addr.isascii() and addr.isprintable() and port.isdigit() and len(port) <= 5):
        return None
    return addr


class MemberAddresses:
    """Where clients reach each member's HTTP API (leader hints, ``GET /cluster``).

    A member's configured address (``peers_http``) comes first, else the one it announced in
    its hello. This node's own is its advertised address, never a wildcard bind address such
    as ``0.0.0.0:8080`` that no client can reach.

    Args:
        node_id: this node's member id.
        members: member id -> raft address, this node included.
        peers_http: member id -> configured HTTP address.
        http_addr: this node's HTTP bind address.
    """

    def __init__(self, node_id: str, members: Mapping[str, str], peers_http: Mapping[str, str],
                 http_addr: str) -> None:
        self._members = dict(members)
        self._configured = dict(peers_http)
        self._configured.setdefault(node_id, advertised_http(http_addr, members[node_id]))
        self._announced: dict[str, str] = {}

    def set_members(self, members: Mapping[str, str], from_contexts: Mapping[str, str]) -> None:
        """The configuration changed: ``members`` (id -> raft address) are the members now,
        ``from_contexts`` the HTTP addresses their contexts give (members added online)."""
        self._members = dict(members)
        for member_id, addr in from_contexts.items():
            self._configured.setdefault(member_id, advertised_http(addr, members[member_id]))

    def learn(self, sender: str, body: Any) -> bool:
        """Take a member's hello; False when it is malformed (the caller counts it)."""
        addr = hello_http_addr(body)
        raft_addr = self._members.get(sender)
        if addr is None or raft_addr is None:
            return False
        self._announced[sender] = advertised_http(addr, raft_addr)
        return True

    def of(self, member_id: str | None) -> str | None:
        """The HTTP address of a member, or None when it is not known."""
        if member_id is None:
            return None
        return self._configured.get(member_id) or self._announced.get(member_id)

    def known(self) -> dict[str, str]:
        """Member id -> HTTP address, for the members whose address is known."""
        return {m: a for m in self._members if (a := self.of(m)) is not None}


@dataclass(frozen=True)
class NodeFigures:
    """Every figure of the Raft process at one moment, built by the process.

    Attributes:
        view: what the local reads show (health, cluster, the Raft part of stats).
        counters: the other figures of the metrics map, named as exported: counts and gauges
            (ints), histograms (``Histogram.to_plain``), labelled counts
            (``{"by": label, "values": {value: n}}``).
    """

    view: NodeView
    counters: Mapping[str, Any]


def node_metrics(figures: NodeFigures) -> dict[str, Any]:
    """Counters and gauges of this Raft process, flat, for the API's /metrics."""
    st = figures.view.status
    out: dict[str, Any] = dict(figures.counters)
    out.update({
        "term": st.term, "commit_index": st.commit, "applied_index": st.applied,
        "last_index": st.last_index, "snapshot_index": st.snapshot_index,
        "is_leader": int(st.role is Role.LEADER), "role": st.role.value,
        "catch_up_index": st.catch_up_index,
    })
    return out
