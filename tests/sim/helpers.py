"""Shared helpers for the simulator scenario tests."""

from __future__ import annotations

import random

from dqueue.raft import Message
from dqueue.sim import Cluster, LinkFaults


def make_cluster(size: int, seed: int = 1, faults: LinkFaults | None = None,
                 snapshot_every: int = 0, **raft_options: object) -> Cluster:
    """A cluster of ``size`` members driven by one seeded Random."""
    return Cluster(size, random.Random(seed), faults, snapshot_every,
                   raft_options=raft_options)


def commit_value(cluster: Cluster, value: bytes, max_ticks: int = 300,
                 on: tuple[str, ...] | None = None) -> None:
    """Propose ``value`` at the current leader (again if dropped) until every live member
    of ``on`` (default: all live members) has applied it. One command: every re-send has the
    same session seq, so it is applied once."""
    members = on or tuple(cluster.alive())
    cluster.anonymous_seq += 1
    session = ("anon", cluster.anonymous_seq, 0)

    def applied_everywhere() -> bool:
        return all(value in cluster.values(i) for i in members)

    proposed_at = None
    for _ in range(max_ticks):
        if applied_everywhere():
            return
        leader = cluster.leader()
        due = proposed_at is None or cluster.now - proposed_at > 40
        if leader is not None and due and cluster.propose(leader, value, session):
            proposed_at = cluster.now
        cluster.tick()
    raise TimeoutError(f"{value!r} not applied on {members} in {max_ticks} ticks")


def same_logs(cluster: Cluster, members: tuple[str, ...], max_ticks: int = 50) -> bool:
    """True when the members apply the same values up to the same index within
    ``max_ticks`` (a follower learns the leader's newest commit index with the next append
    or heartbeat, so the last entries may reach it a heartbeat later)."""
    for _ in range(max_ticks):
        nodes = [cluster.nodes[i] for i in members]
        if all(n is not None for n in nodes) and len({n.applied for n in nodes}) == 1:
            break
        cluster.tick()
    first = cluster.nodes[members[0]]
    assert first is not None
    return all(cluster.nodes[i] is not None and cluster.nodes[i].applied == first.applied
               and cluster.values(i) == first.values for i in members)


def churn(cluster: Cluster, rng: random.Random, ticks: int, clients: int, propose: float,
          crash: float, restart: float, prefix: bytes) -> None:
    """Clients propose at random live members while members crash and restart at random."""
    proposed = 0
    for _ in range(ticks):
        alive = cluster.alive()
        for _ in range(clients):
            if alive and rng.random() < propose:
                proposed += 1
                cluster.propose(rng.choice(alive), prefix + b"%d" % proposed)
        if alive and rng.random() < crash:
            cluster.crash(rng.choice(alive))
        for node_id in cluster.ids:
            if cluster.nodes[node_id] is None and rng.random() < restart:
                cluster.restart(node_id)
        cluster.tick()


def heal_and_commit(cluster: Cluster, value: bytes = b"final", max_ticks: int = 1000) -> None:
    """Restart every member, stop network faults and commit ``value`` everywhere."""
    for node_id in cluster.ids:
        cluster.restart(node_id)
    cluster.network.heal()
    cluster.network.faults = LinkFaults()
    commit_value(cluster, value, max_ticks=max_ticks)


def diverge_old_leader(cluster: Cluster, stale: int, fresh: int,
                       ticks: int = 5) -> tuple[str, str, tuple[str, ...]]:
    """Cut the leader off, give it ``stale`` uncommitted entries, let the others elect a
    new leader and commit ``fresh`` values. Returns (old leader, new leader, the others)."""
    old = cluster.wait_leader()
    commit_value(cluster, b"base")
    cluster.network.isolate(old, cluster.ids)
    for n in range(stale):
        cluster.propose(old, b"stale%d" % n)
    cluster.run(ticks)
    others = tuple(i for i in cluster.ids if i != old)
    new = cluster.wait_leader(among=others)
    for n in range(fresh):
        cluster.propose(new, b"fresh%d" % n)
    commit_value(cluster, b"last", on=others)
    return old, new, others


def record_deliveries(cluster: Cluster) -> list[Message]:
    """Wrap the network so that the test sees every delivered message."""
    seen: list[Message] = []
    due = cluster.network.due

    def recording_due(now: int) -> list[Message]:
        out = due(now)
        seen.extend(out)
        return out

    cluster.network.due = recording_due
    return seen
