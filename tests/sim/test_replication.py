"""Log replication scenarios on the simulator (Raft sections 5.3 and 5.4)."""

from __future__ import annotations

from dqueue.raft import MessageType

from .helpers import (
    commit_value,
    diverge_old_leader,
    make_cluster,
    record_deliveries,
    same_logs,
)


def test_basic_agreement():
    cluster = make_cluster(3)
    cluster.wait_leader()
    for n in range(5):
        commit_value(cluster, b"v%d" % n)
    assert same_logs(cluster, cluster.ids)
    assert cluster.values("n1") == [b"v0", b"v1", b"v2", b"v3", b"v4"]


def test_agreement_despite_failed_follower():
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.ids if i != leader)
    cluster.crash(follower)
    for n in range(5):
        commit_value(cluster, b"v%d" % n)
    cluster.restart(follower)
    commit_value(cluster, b"after")
    assert same_logs(cluster, cluster.ids)
    assert b"v4" in cluster.values(follower)


def test_no_agreement_without_majority():
    cluster = make_cluster(5)
    leader = cluster.wait_leader()
    commit_value(cluster, b"before")
    followers = [i for i in cluster.ids if i != leader]
    for node_id in followers[:3]:
        cluster.network.isolate(node_id, cluster.ids)
    commit_before = cluster.raft(leader).log.committed
    assert cluster.propose(leader, b"lonely")
    cluster.run(60)
    assert all(cluster.raft(i).log.committed == commit_before for i in (leader, followers[3]))
    assert all(b"lonely" not in cluster.values(i) for i in cluster.ids)
    cluster.network.heal()
    commit_value(cluster, b"after")
    assert same_logs(cluster, cluster.ids)


def test_concurrent_proposals_commit_in_one_order_everywhere():
    cluster = make_cluster(5)
    cluster.wait_leader()
    proposed = []
    for n in range(30):
        for node_id in cluster.ids:
            value = b"%s-%d" % (node_id.encode(), n)
            if cluster.propose(node_id, value):
                proposed.append(value)
        cluster.tick()
    commit_value(cluster, b"end")
    assert same_logs(cluster, cluster.ids)
    assert set(proposed) <= set(cluster.values("n1"))
    assert len(proposed) == 150


def test_partitioned_old_leader_with_uncommitted_entries_is_overwritten():
    cluster = make_cluster(3)
    old, _, _ = diverge_old_leader(cluster, stale=10, fresh=3)
    cluster.network.heal()
    commit_value(cluster, b"healed")
    assert same_logs(cluster, cluster.ids)
    assert not [v for v in cluster.values(old) if v.startswith(b"stale")]


def test_fast_backup_over_fifty_divergent_entries():
    """Raft 5.3's optimization: the follower names its conflicting term, so the leader
    skips it in one round trip instead of one entry per round trip."""
    cluster = make_cluster(3, max_append_bytes=1 << 20)
    old, new, others = diverge_old_leader(cluster, stale=50, fresh=50)
    # A fresh leader starts probing at its own last index, far past the divergence.
    successor = next(i for i in others if i != new)
    cluster.raft(new).transfer_leadership(successor)
    cluster.run_until(lambda: cluster.leader() == successor, 100)
    seen = record_deliveries(cluster)
    cluster.network.heal()
    commit_value(cluster, b"healed")
    rejections = [m for m in seen if m.type is MessageType.APPEND_ENTRIES_RESPONSE
                  and m.sender == old and m.reject]
    # One rejection per divergent term, plus at most one answering a stale probe.
    assert 1 <= len(rejections) <= 3, rejections
    assert same_logs(cluster, cluster.ids)


def test_pipelining_keeps_at_most_max_inflight_appends_outstanding():
    cluster = make_cluster(3, max_inflight_msgs=2, max_append_bytes=2)
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.ids if i != leader)
    commit_value(cluster, b"warm")
    cluster.network.isolate(follower, cluster.ids)
    for n in range(20):
        cluster.propose(leader, b"%02d" % n)
    cluster.process_all()
    cluster.process_all()
    in_flight = [m for _, _, m in cluster.network.in_flight
                 if m.type is MessageType.APPEND_ENTRIES and m.to == follower and m.entries]
    # One entry per append (max_append_bytes=2), at most two unanswered to the cut peer.
    assert len(in_flight) == 2
    cluster.network.heal()
    commit_value(cluster, b"done")
    assert same_logs(cluster, cluster.ids)
