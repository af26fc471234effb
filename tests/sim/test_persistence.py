"""Crash and restart scenarios: a member comes back only with what it persisted."""

from __future__ import annotations

import random

import pytest

from dqueue.sim import LinkFaults

from .helpers import churn, commit_value, heal_and_commit, make_cluster, same_logs

UNRELIABLE = LinkFaults(drop=0.1, duplicate=0.05, delay=0.2, max_delay_ticks=5)


def test_persistence_across_crash_of_all_members():
    cluster = make_cluster(3)
    cluster.wait_leader()
    commit_value(cluster, b"a")
    commit_value(cluster, b"b")
    terms = {i: cluster.raft(i).current_term for i in cluster.ids}
    for node_id in cluster.ids:
        cluster.crash(node_id)
    for node_id in cluster.ids:
        cluster.restart(node_id)
        # Term and vote came back from the disk (Raft figure 2, persistent state).
        assert cluster.raft(node_id).current_term == terms[node_id]
    commit_value(cluster, b"c")
    assert cluster.values("n1")[:3] == [b"a", b"b", b"c"]
    assert same_logs(cluster, cluster.ids)


def test_persistence_across_crash_of_leader():
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    commit_value(cluster, b"a")
    cluster.crash(leader)
    others = tuple(i for i in cluster.ids if i != leader)
    cluster.wait_leader(among=others)
    commit_value(cluster, b"b")
    cluster.restart(leader)
    commit_value(cluster, b"c")
    assert cluster.values(leader) == [b"a", b"b", b"c"]


def test_persistence_across_crash_of_follower():
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.ids if i != leader)
    commit_value(cluster, b"a")
    cluster.crash(follower)
    commit_value(cluster, b"b")
    cluster.restart(follower)
    assert cluster.raft(follower).log.last_index() >= 2
    commit_value(cluster, b"c")
    assert cluster.values(follower) == [b"a", b"b", b"c"]


def test_unpersisted_state_is_lost_in_a_crash():
    """A proposal appended in memory but never handed out in a Ready does not survive."""
    cluster = make_cluster(1)
    cluster.wait_leader()
    commit_value(cluster, b"kept")
    cluster.raft("n1").propose(b"lost")
    cluster.crash("n1")
    cluster.restart("n1")
    cluster.wait_leader()
    commit_value(cluster, b"after")
    assert cluster.values("n1") == [b"kept", b"after"]


def _figure8(cluster, rng: random.Random, rounds: int) -> None:
    """The Raft paper's figure 8 situation, driven at random as in its well-known tests:
    leaders crash soon after appending, others restart, so entries of old terms sit on
    a majority while newer leaders come and go."""
    quorum = len(cluster.ids) // 2 + 1
    value = 0
    for _ in range(rounds):
        leader = cluster.leader()
        if leader is not None:
            value += 1
            cluster.propose(leader, b"f%d" % value)
        cluster.run(rng.randint(1, 15) if rng.random() < 0.9 else rng.randint(20, 60))
        leader = cluster.leader()
        if leader is not None and rng.random() < 0.5:
            cluster.crash(leader)
        if len(cluster.alive()) < quorum:
            down = [i for i in cluster.ids if cluster.nodes[i] is None]
            cluster.restart(rng.choice(down))
    heal_and_commit(cluster)
    assert same_logs(cluster, cluster.ids)


@pytest.mark.parametrize("seed", range(4))
def test_figure8_reliable(seed):
    _figure8(make_cluster(5, seed=seed), random.Random(seed), rounds=150)


@pytest.mark.parametrize("seed", range(4))
def test_figure8_unreliable(seed):
    _figure8(make_cluster(5, seed=seed, faults=UNRELIABLE), random.Random(seed), rounds=150)


def test_churn_with_crashes_and_restarts_while_clients_propose():
    cluster = make_cluster(5, seed=7, faults=UNRELIABLE)
    churn(cluster, random.Random(7), ticks=1500, clients=3, propose=0.3, crash=0.02,
          restart=0.05, prefix=b"c")
    heal_and_commit(cluster)
    acked = cluster.checker.acked
    assert len(acked) > 100
    for node_id in cluster.ids:
        assert acked <= set(cluster.values(node_id))
