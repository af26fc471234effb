"""What the Raft process shows of itself: members' HTTP addresses, the view behind the local
queries (health, cluster) and the flat metrics map that the API process exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dqueue.node import queries
from dqueue.node.queue_events import queue_event_metrics
from dqueue.node.requests import Stage
from dqueue.raft import Role

if TYPE_CHECKING:
    from dqueue.node.process import RaftProcess

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


def http_of(p: RaftProcess, member_id: str | None) -> str | None:
    """The HTTP address of a member, from the configuration or its hello."""
    if member_id is None:
        return None
    if member_id == p.node_id:
        # The advertised address (peers_http) before the bind address, which may be a
        # wildcard such as 0.0.0.0:8080 that no client can reach.
        return p.config.peers_http.get(member_id) or advertised_http(
            p.config.http_addr, p.members[member_id])
    return p.config.peers_http.get(member_id) or p.peer_http.get(member_id)


def node_view(p: RaftProcess) -> queries.NodeView:
    """Gather what the local queries show."""
    http_addrs = {m: a for m in p.members if (a := http_of(p, m)) is not None}
    return queries.NodeView(
        node_id=p.node_id, status=p.raft.status(),
        leader_http=http_of(p, p.raft.leader_id), members=p.members,
        http_addrs=http_addrs, stopping=p.stopping_since_ms is not None,
    )


def node_metrics(p: RaftProcess) -> dict[str, Any]:
    """Counters and gauges of this Raft process, flat, for the API's /metrics."""
    st = p.raft.status()
    tc, ic = p.transport.counters, p.ipc.counters
    out: dict[str, Any] = dict(p.counters)
    out.update({
        "term": st.term, "commit_index": st.commit, "applied_index": st.applied,
        "last_index": st.last_index, "snapshot_index": st.snapshot_index,
        "is_leader": int(st.role is Role.LEADER), "store_syncs_total": p.store.syncs,
        "peer_sent_total": tc.sent, "peer_received_total": tc.received,
        "peer_send_dropped_total": tc.send_dropped, "peer_malformed_total": tc.malformed,
        "peer_unknown_total": tc.unknown_peer, "ipc_received_total": ic.received,
        # Refused handshakes and forged messages (docs/security.md), every reason listed.
        "peer_rejected_total": {"by": "reason", "values": p.transport.rejected_by_reason()},
        "ipc_malformed_total": ic.malformed, "ipc_bad_request_total": ic.bad_request,
        "requests_pending": len(p.router.table.pending),
        "requests_parked": p.router.table.count(Stage.PARKED),
        # Client sessions (docs/raft-process.md): the table's size, and the router's resends.
        "session_clients": len(p.queue.sessions),
        "session_outcomes": p.queue.sessions.outcomes_kept(),
        **p.router.counters,
        "role": st.role.value,
        "persist_ms": p.persist_ms.to_plain(),
        "entries_per_ready": p.batch_entries.to_plain(),
        "commands_per_entry": p.commands_per_entry.to_plain(),
        "command_ms": p.command_ms.to_plain(),
        "gc_ms": p.gc_ms.to_plain(),
        "gc_frozen_objects": p.gc_freezer.frozen_objects(),
        "catch_up_index": st.catch_up_index,
        "snapshots_rejected_total": p.raft.snapshots_rejected,
        "proposals_rejected_total": p.raft.proposals_rejected,
    })
    out.update(queue_event_metrics(p.queue))
    return out
