"""Leader election scenarios on the simulator (Raft section 5.2, pre-vote, check-quorum)."""

from __future__ import annotations

import random

import pytest

from dqueue.raft import MessageType, Role

from .helpers import commit_value, make_cluster


def test_initial_election():
    cluster = make_cluster(3)
    leader = cluster.wait_leader(max_ticks=100)
    term = cluster.raft(leader).current_term
    assert all(cluster.raft(i).current_term == term for i in cluster.ids)
    # Stays stable with a healthy network: no new term for a long while.
    cluster.run(200)
    assert cluster.leader() == leader and cluster.raft(leader).current_term == term


def test_reelection_after_leader_cut_off_and_old_leader_returns_as_follower():
    cluster = make_cluster(3)
    old = cluster.wait_leader()
    cluster.network.isolate(old, cluster.ids)
    others = tuple(i for i in cluster.ids if i != old)
    new = cluster.wait_leader(among=others)
    assert new != old
    # Check-quorum: the cut-off leader steps down on its own (thesis 6.2).
    cluster.run_until(lambda: cluster.raft(old).role is not Role.LEADER, 40)
    cluster.network.heal()
    cluster.run_until(lambda: cluster.raft(old).leader_id == new, 60)
    assert cluster.raft(old).role is Role.FOLLOWER
    assert cluster.leaders() == [new]


def test_no_leader_without_quorum():
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    followers = [i for i in cluster.ids if i != leader]
    cluster.network.isolate(followers[0], cluster.ids)
    cluster.network.isolate(followers[1], cluster.ids)
    cluster.run(100)
    assert cluster.leaders() == []
    cluster.network.heal()
    cluster.wait_leader(max_ticks=200)


def test_many_elections_with_random_disconnects_seven_members():
    cluster = make_cluster(7, seed=3)
    rng = random.Random(11)
    cluster.wait_leader()
    for _ in range(10):
        down = rng.sample(cluster.ids, 3)
        for node_id in down:
            cluster.network.isolate(node_id, cluster.ids)
        up = tuple(i for i in cluster.ids if i not in down)
        cluster.run(rng.randint(10, 40))
        # Four of seven still form a majority and must (re-)elect among themselves.
        leader = cluster.wait_leader(max_ticks=300, among=up)
        assert leader in up
        cluster.network.heal()
    cluster.wait_leader(max_ticks=300)


def test_rejoining_partitioned_member_does_not_depose_healthy_leader():
    """Pre-vote (thesis 9.6): an isolated member cannot win pre-votes, so its term stays put
    and the leader keeps its term when it rejoins."""
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    term = cluster.raft(leader).current_term
    loner = next(i for i in cluster.ids if i != leader)
    cluster.network.isolate(loner, cluster.ids)
    cluster.run(300)
    assert cluster.raft(loner).current_term == term
    cluster.network.heal()
    cluster.run(100)
    assert cluster.leader() == leader
    assert cluster.raft(leader).current_term == term


def test_without_pre_vote_rejoining_member_disrupts_leader():
    """The contrast that shows pre-vote matters: without it the loner's term runs ahead."""
    cluster = make_cluster(3, pre_vote=False, check_quorum=False)
    leader = cluster.wait_leader()
    term = cluster.raft(leader).current_term
    loner = next(i for i in cluster.ids if i != leader)
    cluster.network.isolate(loner, cluster.ids)
    cluster.run(300)
    assert cluster.raft(loner).current_term > term


def test_leader_that_loses_its_quorum_steps_down():
    cluster = make_cluster(5)
    leader = cluster.wait_leader()
    cluster.network.partition([[leader, next(i for i in cluster.ids if i != leader)],
                               [i for i in cluster.ids if i != leader][1:]])
    taken = cluster.run_until(lambda: cluster.raft(leader).role is not Role.LEADER, 100)
    # Check-quorum acts within two election timeouts of base length.
    assert taken <= 2 * cluster.raft(leader).config.election_ticks


@pytest.mark.parametrize("size", [3, 5])
def test_bounded_messages_to_elect_and_when_idle(size):
    cluster = make_cluster(size)
    cluster.wait_leader()
    peers = size - 1
    to_elect = sum(cluster.delivered_by_type.values())
    # Pre-vote and vote rounds, the first append (no-op) and its acks, a few heartbeats.
    assert to_elect <= 12 * peers, cluster.delivered_by_type
    before = dict(cluster.delivered_by_type)
    idle_ticks = 100
    cluster.run(idle_ticks)
    idle = {k: v - before.get(k, 0) for k, v in cluster.delivered_by_type.items()
            if v > before.get(k, 0)}
    heartbeat_rounds = idle_ticks // cluster.raft(cluster.leader()).config.heartbeat_ticks
    # When idle: one heartbeat and one answer per peer per round, nothing else.
    assert sum(idle.values()) <= 2 * peers * (heartbeat_rounds + 1), idle
    assert set(idle) <= {"HEARTBEAT", "HEARTBEAT_RESPONSE"}


def test_election_safety_over_many_seeds():
    """Split votes happen, yet never two leaders in one term (the checker raises)."""
    for seed in range(20):
        cluster = make_cluster(5, seed=seed)
        cluster.wait_leader()
        commit_value(cluster, b"x")
    assert cluster.delivered_by_type.get(MessageType.REQUEST_VOTE.name, 0) > 0
