"""Liveness fixes on the simulator: a lost TimeoutNow (thesis 3.10) and the repair catch-up
rule (docs/raft.md, "Repair")."""

from __future__ import annotations

import pytest

from dqueue.raft import Message, MessageType, Raft
from dqueue.sim import Cluster, InvariantViolation, LinkFaults

from .helpers import commit_value, make_cluster


def test_transfers_finish_within_an_election_timeout_when_timeout_now_is_lost():
    """Thesis 3.10 on a lossy network (10% of all messages lost) where, on top, the first
    TimeoutNow of every transfer is lost: the target's next heartbeat response brings
    another, so the target of every transfer starts its election well within the election
    timeout after which the leader would give up, and (votes can be lost too) it wins."""
    cluster = make_cluster(5, seed=3, faults=LinkFaults(drop=0.1))
    leader = cluster.wait_leader()
    commit_value(cluster, b"a")
    send = cluster.network.send
    lost: list[Message] = []

    def lose_first_timeout_now(msg: Message, now: int) -> None:
        if msg.type is MessageType.TIMEOUT_NOW and all(m.term != msg.term for m in lost):
            lost.append(msg)
            return
        send(msg, now)

    cluster.network.send = lose_first_timeout_now  # type: ignore[method-assign]
    election_ticks = cluster.raft(leader).config.election_ticks
    campaign_ticks = []
    won = 0
    for n in range(10):
        leader = cluster.wait_leader()
        leader_raft = cluster.raft(leader)
        target = cluster.ids[(cluster.ids.index(leader) + 1 + n % 3) % len(cluster.ids)]
        cluster.run_until(lambda r=leader_raft, t=target: r.progress[t].match_index
                          == r.log.last_index(), 100)
        term = leader_raft.current_term
        leader_raft.transfer_leadership(target)
        campaign_ticks.append(cluster.run_until(
            lambda t=target, term=term: cluster.raft(t).current_term > term,
            election_ticks - 1))
        won += cluster.wait_leader() == target
    assert len(lost) == 10
    assert max(campaign_ticks) < election_ticks
    assert won >= 8


def test_repaired_member_whose_lost_tail_was_uncommitted_votes_again_on_an_idle_cluster():
    """docs/raft.md "Repair": a member acknowledges a tail that never commits (its leader
    reached no majority), loses its log to a repair, and comes back to an idle cluster whose
    new leader, of a later term, committed only its no-op: its log stays far below the
    catch-up index for good. It votes again anyway, since it stores a committed entry of a
    term above its term at the repair; then, with two members down, no leader could be
    elected without its vote, and one is."""
    cluster = make_cluster(5, seed=5)
    old = cluster.wait_leader()
    commit_value(cluster, b"base")
    member, *others = [i for i in cluster.ids if i != old]
    # The old leader reaches only `member`: 20 entries stored on two of five, never committed.
    cluster.network.partition([[old, member], others])
    for n in range(20):
        cluster.propose(old, b"tail%d" % n)
    cluster.run_until(lambda: cluster.raft(member).log.last_index()
                      == cluster.raft(old).log.last_index(), 50)
    repair_term = cluster.raft(member).current_term
    cluster.crash(old)
    cluster.wipe(member)
    catch_up_index = cluster.disks[member].state.catch_up_index
    assert catch_up_index >= 20
    assert cluster.disks[member].state.catch_up_term == repair_term
    new = cluster.wait_leader(among=tuple(others))
    cluster.network.heal()
    cluster.restart(member)
    cluster.run_until(lambda: cluster.raft(member).log.committed
                      == cluster.raft(new).log.committed, 50)
    assert cluster.raft(new).current_term > repair_term
    cluster.run(50)  # idle: no proposal, so the log does not grow towards the index
    raft = cluster.raft(member)
    assert raft.log.last_index() < catch_up_index
    assert raft.catch_up_index == 0 and cluster.disks[member].state.catch_up_index == 0
    # Two members down: the three left make a quorum only with the repaired member's vote.
    cluster.crash(new)
    survivors = tuple(i for i in cluster.ids if i not in (old, new))
    cluster.wait_leader(among=survivors, max_ticks=300)
    commit_value(cluster, b"after", on=survivors)


def _old_leader_commits_with_lost_acks(cluster: Cluster) -> tuple[str, str, str, int]:
    """docs/raft.md "Repair", the example for the repair term: leader A and member M hold
    entries B lacks (committed by A and M alone), M is wiped and refills from A one entry at
    a time, A crashes once M stores and has seen committed one entry of A's term (the repair
    term). Returns (A, M, B, A's commit index)."""
    a = cluster.wait_leader()
    m, b = (i for i in cluster.ids if i != a)
    commit_value(cluster, b"base")
    cluster.network.partition([[a, m], [b]])
    for n in range(10):
        cluster.propose(a, b"v%d" % n)
    raft_a = cluster.raft(a)
    cluster.run_until(lambda: raft_a.log.committed == raft_a.log.last_index(), 100)
    committed = raft_a.log.committed
    assert cluster.raft(b).log.last_index() < committed
    cluster.wipe(m)
    assert cluster.disks[m].state.catch_up_term == raft_a.current_term
    cluster.network.blocked = {(a, b), (b, a)}  # M talks to both, A and B cannot talk
    cluster.restart(m)
    raft_m = cluster.raft(m)
    cluster.run_until(lambda: raft_m.log.stable_index >= 1 and raft_m.log.committed >= 1, 50)
    assert raft_m.log.last_index() < committed
    assert raft_m.log.last_term() == raft_a.current_term
    cluster.crash(a)
    return a, m, b, committed


def test_entry_of_the_repair_term_does_not_give_the_vote_back():
    """The safe side of the example: M keeps refusing its vote, so B, lacking committed
    entries, is never elected (the cluster waits for A instead), and once A is back every
    committed value is everywhere."""
    cluster = make_cluster(3, seed=7, max_append_bytes=1, max_inflight_msgs=1)
    a, m, _b, committed = _old_leader_commits_with_lost_acks(cluster)
    assert cluster.raft(m).catch_up_index
    cluster.run(200)
    assert cluster.leaders() == []
    cluster.restart(a)
    cluster.network.heal()
    commit_value(cluster, b"after")
    # Every value A had committed (all its entries but the no-op at 1), then b"after".
    expected = cluster.values(a)[:committed - 1]
    assert len(expected) == committed - 1 and expected[-1] == b"v9"
    assert all(cluster.values(i)[:committed] == [*expected, b"after"] for i in cluster.ids)


def test_entry_of_the_repair_term_giving_the_vote_back_loses_committed_entries(monkeypatch):
    """The unsafe side, planted: with ``>=`` instead of ``>`` M votes again on A's entry
    and B wins with M's vote, lacking entries A had committed with M's lost acknowledgement:
    the checker's Leader Completeness (5.4.3) check fires."""
    def regain_on_repair_term(self: Raft) -> bool:
        log = self.log
        held = min(log.committed, log.stable_index)
        return (log.stable_index >= self.catch_up_index
                or (log.term(held) or 0) >= self.catch_up_term)

    monkeypatch.setattr(Raft, "is_caught_up", regain_on_repair_term)
    cluster = make_cluster(3, seed=7, max_append_bytes=1, max_inflight_msgs=1)
    _a, m, b, _committed = _old_leader_commits_with_lost_acks(cluster)
    assert cluster.raft(m).catch_up_index == 0
    with pytest.raises(InvariantViolation, match="leader_completeness"):
        cluster.run_until(lambda: cluster.leader() == b, 200)
