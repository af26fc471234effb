"""Elections for the Raft core (dqueue.raft.core.Raft): asking for votes and granting them.

The candidate's side is ``campaign`` and ``poll`` (Raft 5.2, pre-vote of thesis 9.6); the
voter's side is ``handle_vote_request`` with the election restriction (Raft 5.4.1) and
``in_leader_lease``, the check-quorum lease that ignores a candidate while a leader is known
to be alive (thesis 4.2.3). Who may vote and campaign at all follows the configuration in
force (thesis 4.1): only its voters, a member whose removal is still uncommitted
(``reconfig.removal_pending``), and never a member repaired and not caught up yet
(docs/raft.md, "Repair").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dqueue.raft import reconfig
from dqueue.raft.types import CAMPAIGN_TRANSFER, MAX_RAFT_INT, Message, MessageType

if TYPE_CHECKING:
    from dqueue.raft.core import Raft

_MT = MessageType


def campaign(r: Raft, pre_vote: bool, transfer: bool = False) -> None:
    """Ask every voter for a (pre-)vote with our last log index and term (Raft 5.2).

    Args:
        r: the member.
        pre_vote: ask for pre-votes for ``current_term + 1`` first (thesis 9.6).
        transfer: ordered by the leader's TimeoutNow (thesis 3.10): the requests carry
            CAMPAIGN_TRANSFER so that voters look past their lease.
    """
    if r.current_term >= MAX_RAFT_INT:
        # Invariant: current_term <= MAX_RAFT_INT, so no term ever overflows a signed
        # 64-bit field (msgpack, the store). Refusing to campaign here is safe: terms grow
        # by one per election, so only a forged message (a term the codec still admits)
        # can bring a member this close; the member stays a follower, and safety never
        # depends on an election taking place (Raft 5.2 gives liveness only).
        r.election_elapsed = 0
        return
    is_voter = r.membership.is_voter(r.id)
    if not is_voter and not reconfig.removal_pending(r):
        # A learner, a removed member or one that joins never campaigns (thesis 4.2.2).
        r.election_elapsed = 0
        return
    if r.catch_up_index:
        # A repaired member's own vote is a vote too (Raft.__init__): it waits for a leader
        # to refill its log, even when asked to take over by TimeoutNow.
        r.election_elapsed = 0
        return
    if pre_vote:
        r.become_pre_candidate()
        vote_type = _MT.PRE_VOTE
        # A pre-vote asks about the term we would campaign in, without entering it.
        term = r.current_term + 1
    else:
        r.become_candidate()
        vote_type = _MT.REQUEST_VOTE
        term = r.current_term
    # A member whose own removal is pending campaigns without its own vote: it must win a
    # majority of the configuration in force, which leaves it out (thesis 4.1, 4.2.2).
    if is_voter and poll(r, r.id, True)[0] >= r.quorum:
        # A single-member cluster wins at once.
        if pre_vote:
            r.campaign(False)
        else:
            r.become_leader()
        return
    context = CAMPAIGN_TRANSFER if transfer else b""
    last_index, last_term = r.log.last_index(), r.log.last_term()
    for peer in r.voter_peers:
        r.send(Message(vote_type, peer, r.id, term, log_term=last_term, index=last_index,
                       context=context))


def poll(r: Raft, voter: str, granted: bool) -> tuple[int, int]:
    """Record one vote; return (granted, rejected) counts. A voter counts once."""
    r.votes.setdefault(voter, granted)
    yes = sum(1 for v in r.votes.values() if v)
    return yes, len(r.votes) - yes


def in_leader_lease(r: Raft, m: Message) -> bool:
    """Whether a vote request of a term above ours is to be ignored: with check-quorum, we
    heard from a live leader within the minimum election timeout, so this candidate cannot
    depose it (thesis 4.2.3), unless the leader itself ordered the campaign (thesis 3.10)."""
    return (r.config.check_quorum and r.leader_id is not None
            and r.election_elapsed < r.config.election_ticks
            and m.context != CAMPAIGN_TRANSFER)


def handle_vote_request(r: Raft, m: Message) -> None:
    """RequestVote and PreVote receiver (Raft figure 2 and section 5.4.1)."""
    is_pre = m.type is _MT.PRE_VOTE
    # One vote per term (Raft 5.2); a repeat request from the same candidate is granted
    # again. A pre-vote for a future term binds nothing, so it can always be granted.
    can_vote = (r.voted_for == m.sender
                or (r.voted_for is None and r.leader_id is None)
                or (is_pre and m.term > r.current_term))
    response = _MT.PRE_VOTE_RESPONSE if is_pre else _MT.REQUEST_VOTE_RESPONSE
    # Election restriction (Raft 5.4.1): grant only to a log at least as up to date, and
    # never while a repaired log has not caught up (Raft.__init__, catch_up_index).
    if can_vote and not r.catch_up_index and r.log.is_up_to_date(m.index, m.log_term):
        r.send(Message(response, m.sender, r.id, m.term))
        if not is_pre:
            r.election_elapsed = 0
            r.voted_for = m.sender
    else:
        r.send(Message(response, m.sender, r.id, r.current_term, reject=True))
