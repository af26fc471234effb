"""ReadIndex (thesis 6.4) and leadership transfer (thesis 3.10) on the simulator."""

from __future__ import annotations

from dqueue.raft import ProposalDropped, Role

from .helpers import commit_value, make_cluster


def test_read_index_on_leader_answers_at_commit_index_after_heartbeat_round():
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    commit_value(cluster, b"a")
    commit = cluster.raft(leader).log.committed
    cluster.raft(leader).read_index(b"q1")
    ready = cluster.raft(leader).ready()
    # Not answered before a quorum confirmed leadership.
    assert ready.read_states == ()
    cluster.raft(leader).advance(ready)
    for message in ready.messages:
        cluster.network.send(message, cluster.now)
    cluster.run_until(lambda: cluster.read_states[leader] != [], 20)
    (state,) = cluster.read_states[leader]
    assert (state.index, state.context) == (commit, b"q1")


def test_read_index_forwarded_from_follower():
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    commit_value(cluster, b"a")
    follower = next(i for i in cluster.ids if i != leader)
    cluster.raft(follower).read_index(b"from-follower")
    cluster.run_until(lambda: cluster.read_states[follower] != [], 20)
    assert cluster.read_states[follower][0].index == cluster.raft(leader).log.committed


def test_read_index_not_served_by_a_deposed_leader():
    cluster = make_cluster(3)
    old = cluster.wait_leader()
    commit_value(cluster, b"a")
    cluster.network.isolate(old, cluster.ids)
    cluster.raft(old).read_index(b"stale")
    others = tuple(i for i in cluster.ids if i != old)
    cluster.wait_leader(among=others)
    commit_value(cluster, b"newer", on=others)
    cluster.run(50)
    assert cluster.read_states[old] == []


def test_leadership_transfer_to_up_to_date_target():
    cluster = make_cluster(5)
    leader = cluster.wait_leader()
    commit_value(cluster, b"a")
    target = next(i for i in cluster.ids if i != leader)
    term = cluster.raft(leader).current_term
    cluster.raft(leader).transfer_leadership(target)
    cluster.run_until(lambda: cluster.leader() == target, 30)
    assert cluster.raft(target).current_term == term + 1
    assert cluster.raft(leader).role is Role.FOLLOWER
    commit_value(cluster, b"b")


def test_leadership_transfer_brings_lagging_target_up_to_date_first():
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    target = next(i for i in cluster.ids if i != leader)
    cluster.network.isolate(target, cluster.ids)
    for n in range(10):
        commit_value(cluster, b"v%d" % n, on=tuple(i for i in cluster.ids if i != target))
    cluster.network.heal()
    cluster.raft(leader).transfer_leadership(target)
    try:
        cluster.raft(leader).propose(b"during")
        raised = False
    except ProposalDropped as exc:
        raised = exc.leader_id == target
    assert raised
    cluster.run_until(lambda: cluster.leader() == target, 60)
    assert cluster.values(target)[:10] == [b"v%d" % n for n in range(10)]


def test_leadership_transfer_to_unreachable_target_is_abandoned():
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    target = next(i for i in cluster.ids if i != leader)
    cluster.network.isolate(target, cluster.ids)
    cluster.raft(leader).transfer_leadership(target)
    assert cluster.raft(leader).lead_transferee == target
    cluster.run_until(lambda: cluster.raft(leader).lead_transferee is None, 30)
    assert cluster.leader() == leader
    others = tuple(i for i in cluster.ids if i != target)
    commit_value(cluster, b"still-serving", on=others)
