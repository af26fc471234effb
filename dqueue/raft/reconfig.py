"""How the Raft core (dqueue.raft.core.Raft) keeps its configuration in step with its log.

Single-server changes (thesis section 4.1): a configuration takes effect on a member as soon
as its CONF_CHANGE entry is appended, and a truncated entry reverts to the configuration
before it (``sync_membership``). A leader proposes a change only once it committed an entry
of its own term and while no other change is uncommitted (``check_can_propose``), and a
leader that removed itself leads until the removal commits, without counting itself, then
steps down (thesis 4.2.2, ``on_commit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dqueue.raft.membership import (
    ConfChange,
    ConfigHistory,
    apply_conf_change,
    decode_conf_entry,
    encode_conf_entry,
)
from dqueue.raft.progress import Progress
from dqueue.raft.types import (
    Entry,
    EntryType,
    Membership,
    Message,
    MessageType,
    PersistedState,
    ProposalDropped,
    Role,
)

if TYPE_CHECKING:
    from dqueue.raft.core import Raft


def initial_history(bootstrap: tuple[str, ...], state: PersistedState,
                    entries: list[Entry]) -> ConfigHistory:
    """The configurations of a (re)started member: the snapshot's, else the bootstrap
    voters (``RaftConfig.members``, empty for a member that joins), then those of the conf
    entries in its stored log ``entries`` (the log after the snapshot)."""
    if state.snapshot is not None:
        history = ConfigHistory(state.snapshot.meta.index, state.snapshot.meta.membership)
    else:
        history = ConfigHistory(0, Membership(voters=bootstrap))
    for entry in entries:
        if entry.type is EntryType.CONF_CHANGE:
            history.append(entry.index, conf_of(entry))
    return history


def conf_of(entry: Entry) -> Membership:
    """The configuration a CONF_CHANGE entry sets. The entry is in a log already: the codec
    checked it on the way in (or this member's own leader wrote it), so a failure here is a
    bug or a corrupted store, and is raised (never skipped: members would diverge)."""
    return decode_conf_entry(entry.data)[1]


def set_membership(r: Raft, m: Membership) -> None:
    """Make ``m`` the configuration ``r`` acts on (peers, quorum, a leader's progress).

    Peers (who gets the log, whose messages are heard) are the members of ``m`` and of the
    configuration committed: a member a pending change removes still gets that entry, so it
    learns it was removed (Status.removed). Voters and quorum are ``m``'s alone (4.1).
    """
    r.membership = m
    committed = r.conf_history.at(r.log.committed).members()
    r.peers = tuple(x for x in dict.fromkeys(m.members() + committed) if x != r.id)
    r.peer_set = frozenset(r.peers)
    r.voter_peers = tuple(x for x in m.voters if x != r.id)
    r.quorum = m.quorum()
    if r.role is Role.LEADER:
        next_index = r.log.last_index() + 1
        for peer in r.peers:
            if peer not in r.progress:
                # A new member: probe it from the end of the log (Raft 5.3).
                r.progress[peer] = Progress(next_index, r.config.max_inflight_msgs)
                r.needs_flush = True
        for peer in [p for p in r.progress if p not in r.peer_set]:
            del r.progress[peer]
            r.read_acks.pop(peer, None)
            r.append_pending.discard(peer)
        if r.lead_transferee is not None and r.lead_transferee not in r.voter_peers:
            r.lead_transferee = None


def sync_membership(r: Raft, from_index: int) -> None:
    """The log changed from ``from_index`` on (appended, or truncated and appended): drop
    the configurations of entries no longer there and take those of the entries now there
    (thesis 4.1: a configuration is in force once appended, gone once truncated)."""
    history: ConfigHistory = r.conf_history
    before = history.current()
    history.truncate_from(from_index)
    last = r.log.last_index()
    if from_index <= last:
        for entry in r.log.slice(max(from_index, r.log.first_index()), last + 1):
            if entry.type is EntryType.CONF_CHANGE:
                history.append(entry.index, conf_of(entry))
    if history.current() != before:
        set_membership(r, history.current())


def reset_to_snapshot(r: Raft, index: int, m: Membership) -> None:
    """A snapshot replaced the whole log: its configuration is the one in force."""
    before = r.conf_history.current()
    r.conf_history.reset(index, m)
    if m != before:
        set_membership(r, m)


def check_can_propose(r: Raft, change: ConfChange) -> Membership:
    """The configuration ``change`` would make, when the leader may propose it now.

    Raises:
        ProposalDropped: not the leader, a transfer is under way, the leader has not yet
            committed an entry of its term (thesis 4.1's fix: until then an uncommitted
            change of an earlier leader may still be in the log of others), or a change is
            uncommitted (one at a time, thesis 4.1).
        ValueError: the change does not fit the configuration in force.
    """
    if r.role is not Role.LEADER:
        raise ProposalDropped(r.leader_id)
    if r.lead_transferee is not None:
        raise ProposalDropped(r.lead_transferee)
    log = r.log
    if log.term(log.committed) != r.current_term:
        raise ProposalDropped(r.id)
    if r.conf_history.last_index() > log.committed:
        raise ProposalDropped(r.id)
    return apply_conf_change(r.membership, change)


def conf_entry(change: ConfChange, after: Membership) -> Entry:
    """The unnumbered entry that carries ``change`` (the leader numbers it)."""
    return Entry(0, 0, EntryType.CONF_CHANGE, encode_conf_entry(change, after))


def on_commit(r: Raft) -> None:
    """The leader's commit index moved. A change that committed stops replication to the
    members it removed; a leader that is no voter in the configuration in force steps down
    once it commits (thesis 4.2.2); until then it leads without counting itself."""
    if len(r.peers) != len(r.membership.members()) - r.membership.is_member(r.id):
        if r.role is Role.LEADER:
            tell_removed(r)
        set_membership(r, r.membership)
    if (r.role is Role.LEADER and not r.membership.is_voter(r.id)
            and r.conf_history.last_index() <= r.log.committed):
        r.become_follower(r.current_term, None)


def tell_removed(r: Raft) -> None:
    """The leader is about to stop replicating to the members the committed configuration
    dropped: send each, once and best effort, the entry that removed it with the commit
    index. AppendEntries commits up to its last new entry on a log that matches (Raft 5.3),
    so a member that missed the commit learns it and stops asking for pre-votes
    (removal_pending); a heartbeat could not say it, as a heartbeat's commit never exceeds
    the member's acknowledged match, which its answer to the entry had not raised yet."""
    log = r.log
    committed = log.committed
    index = r.conf_history.index_at(committed)
    prev_term = log.term(index - 1)
    if index < log.first_index() or prev_term is None:
        return  # compacted: a snapshot would be needed, and the member is leaving
    entries = tuple(log.slice(index, index + 1))
    for peer in r.peers:
        if not r.membership.is_member(peer):
            r.send(Message(MessageType.APPEND_ENTRIES, peer, r.id, r.current_term,
                           log_term=prev_term, index=index - 1, entries=entries,
                           commit=committed))


def voter_count(r: Raft, acked: Callable[[str], bool]) -> int:
    """How many voters in force are counted: the peers that ``acked``, and this member when it
    is a voter. Learners never count (thesis 4.1), nor a leader that removed itself (4.2.2)."""
    return int(r.membership.is_voter(r.id)) + sum(1 for p in r.voter_peers if acked(p))


def voter_match_indexes(r: Raft) -> list[int]:
    """The leader's view of what each voter in force has stored, counted as ``voter_count``
    counts (its own stable index only when it is a voter), for the commit rule (thesis 4.1)."""
    matches = [r.progress[p].match_index for p in r.voter_peers]
    if r.membership.is_voter(r.id):
        matches.append(r.log.stable_index)
    return matches


def is_removed(r: Raft) -> bool:
    """This member has a configuration, and is not in it."""
    m = r.membership
    return bool(m.voters) and not m.is_member(r.id)


def removal_pending(r: Raft) -> bool:
    """This member was a voter of the configuration it knows committed, and the change in
    force after it (uncommitted: one change at a time, thesis 4.1) removed it.

    Such a member still campaigns, counting only the voters in force (election.campaign).
    Its log holds its removal, which the others may lack: they count it as a voter, and it
    refuses them by the election restriction (Raft 5.4.1). Were it silent, a cluster whose
    leader removed itself and then stepped down (check-quorum) or crashed, with one other
    voter down, could elect no one though a majority of either configuration is up. Winning
    is safe: a majority of the configuration in force is a quorum as any other candidate's
    (the single-server overlap, thesis 4.1), and as leader it commits its removal and steps
    down (on_commit, thesis 4.2.2). A member that missed only the commit of its removal may
    campaign too; it wins only with a log as up to date as a majority's, and then commits.
    """
    history: ConfigHistory = r.conf_history
    committed = r.log.committed
    return (history.last_index() > committed
            and not r.membership.is_member(r.id)
            and history.at(committed).is_voter(r.id))
