"""The Raft paper's figure 8, step by step, on the simulator (Raft section 5.4.2).

An entry of an older term that a new leader has replicated to a majority is not committed by
counting replicas: a member whose log ends in a later term can still win an election and
overwrite it. The test drives the exact schedule of the figure with five members and one
entry per AppendEntries, and checks that the leader of (c) does not commit the old entry,
so that (d), where it is overwritten, breaks no safety property.
"""

from __future__ import annotations

from dqueue.raft import Role

from .helpers import commit_value, make_cluster


def _tick_until(cluster, predicate, max_ticks: int = 200) -> None:
    cluster.run_until(predicate, max_ticks)


def test_figure8_old_term_entry_is_not_committed_by_counting_replicas():
    cluster = make_cluster(5, seed=3, max_append_bytes=1, pre_vote=False, check_quorum=False)
    cluster.rounds_per_tick = 1  # one network hop per tick: the schedule is ours to control
    s1 = cluster.wait_leader()
    commit_value(cluster, b"base")
    s2, s3, s4, s5 = (i for i in cluster.ids if i != s1)
    # (a) S1 replicates X to S2 only, then crashes.
    cluster.network.partition([[s1, s2], [s3, s4, s5]])
    assert cluster.propose(s1, b"X-entry")  # > max_append_bytes: one per append
    x_index = cluster.raft(s1).log.last_index()
    x_term = cluster.raft(s1).current_term
    _tick_until(cluster, lambda: cluster.raft(s2).log.last_index() == x_index)
    cluster.crash(s1)
    # (b) S5 wins among S3, S4, S5 and appends at X's index in a later term, alone:
    # its links are cut the tick it becomes leader, before its no-op leaves.
    cluster.network.partition([[s2], [s3, s4, s5]])
    _tick_until(cluster, lambda: any(cluster.raft(i).role is Role.LEADER
                                     for i in (s3, s4, s5)))
    s5 = next(i for i in (s3, s4, s5) if cluster.raft(i).role is Role.LEADER)
    s3, s4 = (i for i in cluster.ids if i not in (s1, s2, s5))
    cluster.network.isolate(s5, cluster.ids)
    assert cluster.raft(s5).log.term(x_index) > x_term
    cluster.crash(s5)
    # (c) S1 restarts and leads a later term; it replicates X to S3, so X (of an older
    # term) sits on a majority: S1, S2, S3.
    cluster.restart(s1)
    cluster.network.partition([[s1, s2, s3, s4], [s5]])
    _tick_until(cluster, lambda: any(cluster.raft(i).role is Role.LEADER for i in (s1, s2)))
    leader = next(i for i in (s1, s2) if cluster.raft(i).role is Role.LEADER)
    _tick_until(cluster, lambda: cluster.raft(s3).log.term(x_index) == x_term)
    cluster.tick()  # S3's acknowledgement of X reaches the leader
    assert cluster.raft(leader).progress[s3].match_index == x_index
    assert cluster.raft(s3).log.last_index() == x_index  # X arrived, the no-op not yet
    assert cluster.raft(leader).log.committed < x_index  # the rule under test
    # The leader crashes before its own term's entry reaches S3.
    cluster.network.isolate(leader, cluster.ids)
    cluster.crash(leader)
    other = s2 if leader == s1 else s1
    cluster.crash(other)
    # (d) S5 comes back and wins with S3 and S4: its later last term beats X's.
    cluster.restart(s5)
    cluster.network.heal()
    cluster.network.isolate(leader, cluster.ids)
    cluster.network.isolate(other, cluster.ids)
    _tick_until(cluster, lambda: cluster.raft(s5).role is Role.LEADER, 400)
    _tick_until(cluster, lambda: cluster.raft(s3).log.term(x_index) != x_term)
    # X is overwritten: legal, because it was never committed (the checker agrees).
    cluster.network.heal()
    cluster.restart(leader)
    cluster.restart(other)
    commit_value(cluster, b"after", max_ticks=600)
    assert all(b"X-entry" not in cluster.values(i) for i in cluster.ids)
