"""The Ready order that ships (ready_plan), driven by the simulator: skipped commit-only writes,
and crashes inside a Ready at each of its points."""

from __future__ import annotations

from dqueue.raft import Role
from dqueue.sim.cluster import ReadyFaults

from .helpers import commit_value, heal_and_commit, make_cluster, same_logs


def test_a_commit_index_alone_is_not_written_and_a_restart_learns_it_again():
    """Figure 2 keeps commit_index volatile: the disk may lag it, and nothing is lost."""
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    for n in range(5):
        commit_value(cluster, b"c%d" % n)
    cluster.run(10)  # heartbeats carry the last commit index: commit-only Readies
    follower = next(i for i in cluster.ids if i != leader)
    assert cluster.disks[follower].skipped_writes > 0
    assert cluster.disks[follower].state.hard_state.commit < cluster.raft(follower).log.committed
    cluster.crash(follower)
    cluster.restart(follower)
    assert same_logs(cluster, cluster.ids)
    assert cluster.values(follower) == [b"c%d" % n for n in range(5)]


def test_leader_crash_after_its_early_sends_and_apply_keeps_what_it_applied():
    """The leader applied and answered before its write (they were committed, 5.3), then
    crashed before writing the entries it had just sent: the answered values survive."""
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    commit_value(cluster, b"a")
    cluster.propose(leader, b"b")
    cluster.ready_faults = ReadyFaults(before_write=1.0)
    cluster.run_until(lambda: cluster.nodes[leader] is None, 50)
    assert cluster.ready_crashes["before_write"] == 1
    cluster.ready_faults = ReadyFaults()
    acked = set(cluster.checker.acked)
    assert b"a" in acked
    heal_and_commit(cluster)
    for node_id in cluster.ids:
        assert acked <= set(cluster.values(node_id))


def test_crash_right_after_a_granted_vote_keeps_the_vote():
    """Figure 2: the vote is on disk before it leaves; after the crash the voter still holds
    it in that term (the checker's promise check runs at the crash too)."""
    cluster = make_cluster(3)
    old = cluster.wait_leader()
    cluster.ready_faults = ReadyFaults(after_vote=1.0)
    cluster.crash(old)  # the others elect a new leader: one of them grants a vote and crashes
    cluster.run_until(lambda: cluster.ready_crashes["after_vote"] > 0, 200)
    voter = next(i for i in cluster.ids if i != old and cluster.nodes[i] is None)
    stored = cluster.disks[voter].state.hard_state
    assert stored.vote is not None and stored.vote != voter
    cluster.ready_faults = ReadyFaults()
    cluster.restart(voter)
    raft = cluster.raft(voter)
    assert (raft.current_term, raft.voted_for) == (stored.term, stored.vote)
    assert raft.role is Role.FOLLOWER
    heal_and_commit(cluster)
