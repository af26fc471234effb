"""Liveness fixes on the simulator: a lost TimeoutNow (thesis 3.10) and the repair catch-up
rule (docs/raft.md, "Repair")."""

from __future__ import annotations

from dqueue.raft import Message, MessageType
from dqueue.sim import LinkFaults

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
