"""What a member may do with a Ready before it is on disk: one rule, for the node and the sim.

The core's contract (Raft figure 2, "Persistent state ... updated on stable storage before
responding to RPCs") is that nothing a message promises may be lost by a crash after it left.
Within that contract a Ready need not be handled strictly "write, then send, then apply":

- A leader whose term and vote did not change in this Ready may send its AppendEntries and
  heartbeats before its own write (Raft dissertation 10.2.1, "the leader can write to its disk
  in parallel with replicating to the followers"): the core counts the leader's own entries
  toward commit only in ``advance``, once they are stored (``Raft.maybe_commit`` uses the
  stable index), so no entry commits on the strength of a copy a crash could lose.
- The same leader may apply committed entries, and answer clients, before the write: they are
  stored on a majority already (that is what committed means, 5.3), so they survive this
  member's crash, and answering does not wait for the fsync of the entries that follow them.
- Every other message waits for the write: a vote (RequestVote response) promises the vote
  is stored (5.2, one vote per term even across a crash); an append response promises the
  entries are stored (the leader counts them toward commit, 5.3); anything sent by a member
  whose term or vote changed in this Ready promises that term or vote.
- A Ready that only moves the commit index needs no write: commit_index is volatile state in
  figure 2 (a restarted member learns it again from the leader), so it goes with the next
  write; the stored commit index may then lag the one in memory.

``plan_ready`` is the one place this rule lives: ``dqueue/node`` handles each Ready by its plan,
and ``dqueue/sim`` drives the same plan and crashes members at the points between its steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from dqueue.raft.types import Message, MessageType, Ready, Role

#: Messages a leader may send before its own write (dissertation 10.2.1). Never a vote, a vote
#: response or an append response: those promise what they answer is on disk (figure 2).
LEADER_EARLY_TYPES = frozenset({MessageType.APPEND_ENTRIES, MessageType.HEARTBEAT})


@dataclass(frozen=True, slots=True)
class ReadyPlan:
    """How to handle one Ready, in this order:

    1. send ``early``; apply committed entries if ``apply_first``;
    2. write the snapshot, entries and hard state in one synced write if ``needs_write``
       (otherwise write nothing: the hard state goes with the next write);
    3. send ``late``;
    4. restore the snapshot; apply committed entries unless ``apply_first``; serve reads;
    5. ``advance``.

    Attributes:
        early: messages that may leave before the write.
        late: messages that must wait for the write (all of them when ``needs_write`` is off
            and nothing could go early: their order is kept).
        apply_first: apply and answer the committed entries before the write.
        needs_write: the Ready carries entries, a snapshot, or a new term or vote.
        term_or_vote_changed: the Ready's hard state differs from the stored one in term or
            vote (the node then records the new pair as stored once written).
    """

    early: tuple[Message, ...]
    late: tuple[Message, ...]
    apply_first: bool
    needs_write: bool
    term_or_vote_changed: bool


def plan_ready(ready: Ready, role: Role, stored_term: int,
               stored_vote: str | None) -> ReadyPlan:
    """Decide what of ``ready`` may happen before its write (see the module docstring).

    Args:
        ready: the Ready just pulled from the core.
        role: the member's role once this Ready's soft state is taken into account.
        stored_term: current_term as last written to stable storage.
        stored_vote: voted_for as last written to stable storage.

    Returns:
        The plan. Cheap: one pass over the messages, and none at all unless the member is a
        leader whose term and vote are stored.
    """
    hard = ready.hard_state
    changed = hard is not None and (hard.term != stored_term or hard.vote != stored_vote)
    needs_write = bool(ready.entries) or ready.snapshot is not None or changed
    # Only a leader in a stored term with a stored vote (its own) may act before the write:
    # a new term or vote must be on disk before anything that carries it leaves (figure 2).
    leader_early = role is Role.LEADER and not changed
    messages = ready.messages
    early: tuple[Message, ...] = ()
    late = messages
    if leader_early and messages:
        early_types = LEADER_EARLY_TYPES
        held = [m for m in messages if m.type not in early_types]
        if len(held) < len(messages):
            # One pass in the common case (every message early): no late list to build.
            early = messages if not held else tuple(
                m for m in messages if m.type in early_types)
            late = tuple(held)
    # A Ready that installs a snapshot is written before anything is applied: the snapshot
    # replaces the state the entries would apply to (Raft section 7).
    apply_first = leader_early and ready.snapshot is None and bool(ready.committed_entries)
    return ReadyPlan(early, late, apply_first, needs_write, changed)
