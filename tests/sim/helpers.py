"""Shared helpers for the simulator scenario tests."""

from __future__ import annotations

import random

from dqueue.sim import Cluster, LinkFaults


def make_cluster(size: int, seed: int = 1, faults: LinkFaults | None = None,
                 snapshot_every: int = 0, **raft_options: object) -> Cluster:
    """A cluster of ``size`` members driven by one seeded Random."""
    return Cluster(size, random.Random(seed), faults, snapshot_every,
                   raft_options=raft_options)


def commit_value(cluster: Cluster, value: bytes, max_ticks: int = 300,
                 on: tuple[str, ...] | None = None) -> None:
    """Propose ``value`` at the current leader (again if dropped) until every live member
    of ``on`` (default: all live members) has applied it."""
    members = on or tuple(cluster.alive())

    def applied_everywhere() -> bool:
        return all(value in cluster.values(i) for i in members)

    proposed_at = None
    for _ in range(max_ticks):
        if applied_everywhere():
            return
        leader = cluster.leader()
        due = proposed_at is None or cluster.now - proposed_at > 40
        if leader is not None and due and cluster.propose(leader, value):
            proposed_at = cluster.now
        cluster.tick()
    raise TimeoutError(f"{value!r} not applied on {members} in {max_ticks} ticks")


def same_logs(cluster: Cluster, members: tuple[str, ...]) -> bool:
    """True when the members applied the same values up to the same index."""
    first = cluster.nodes[members[0]]
    assert first is not None
    return all(cluster.nodes[i] is not None and cluster.nodes[i].applied == first.applied
               and cluster.values(i) == first.values for i in members)
