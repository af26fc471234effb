"""The Raft state machine: one member's consensus logic with no I/O at all.

Input arrives only through ``tick()``, ``step(message)``, ``propose(data)``,
``read_index(context)``, ``transfer_leadership(target)`` and ``compact(index, data)``. Output
is pulled with ``ready()`` and acknowledged with ``advance(ready)``; the node persists a
Ready before it sends its messages, so no vote or acknowledgement ever leaves before what it
promises is on disk (Raft figure 2, "Persistent state ... updated on stable storage before
responding to RPCs").

The role-specific handling lives in ``dqueue.raft.roles``: the member swaps its step function
when it changes role, in the style of etcd-io/raft.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from dqueue.raft import election, reconfig, roles
from dqueue.raft.log import RaftLog
from dqueue.raft.membership import ConfChange
from dqueue.raft.progress import Progress
from dqueue.raft.types import (
    MAX_RAFT_INT,
    Entry,
    EntryType,
    HardState,
    Membership,
    Message,
    MessageType,
    PersistedState,
    ProposalDropped,
    RaftConfig,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
    SnapshotRefusal,
    SoftState,
    Status,
    snapshot_checksum,
)

_VOTE_REQUESTS = (MessageType.REQUEST_VOTE, MessageType.PRE_VOTE)
_FROM_LEADER = (MessageType.APPEND_ENTRIES, MessageType.HEARTBEAT, MessageType.INSTALL_SNAPSHOT)
# PROPOSE and READ_INDEX are requests forwarded to the leader, not term-bearing (term 0).
_FORWARDED = (MessageType.PROPOSE, MessageType.READ_INDEX)


# The highest term a peer message may carry. No cluster gets there by elections (2^62 of
# them, one a millisecond, take 146 million years), so a message above it comes from a buggy
# member. Adopting such a term would bring every member close to MAX_RAFT_INT, where no one
# may campaign any more (``campaign``), and the term is on disk: the cluster would be without
# a leader for good. Dropped, it leaves 2^62 elections of room (Raft 5.1: terms only grow).
MAX_PEER_TERM = MAX_RAFT_INT >> 1


def accept_any_snapshot(data: bytes) -> bool:
    """The default snapshot validator: every snapshot whose checksum matches is taken."""
    return True


def accept_any_proposal(data: bytes) -> bool:
    """The default validator of forwarded proposals: every one is appended."""
    return True


class Raft:
    """One Raft member (Raft section 5), driven by its node.

    Args:
        config: static settings; ``config.members`` are the bootstrap voters, used only
            when ``persisted`` holds no configuration (reconfig.initial_history).
        rng: the only source of randomness (election timeouts); seed it for determinism.
        persisted: what the node had on disk, or None for a brand-new member.
        snapshot_validator: a pure predicate on the data of a snapshot received from a
            leader, called once its checksum matched and before it is handed out in a Ready
            (persisted) or acknowledged: False drops it (``snapshots_rejected``). The node
            passes one that restores the bytes into a scratch state machine.
        proposal_validator: a pure predicate on the data of an entry a follower forwarded
            (PROPOSE), called before the leader appends it: False drops the proposal
            (``proposals_rejected``). Once appended and committed, an entry every member
            fails to apply stops every member (a committed entry is never skipped), so the
            node passes one that decodes the entry as its apply would.
    """

    def __init__(self, config: RaftConfig, rng: random.Random,
                 persisted: PersistedState | None = None,
                 snapshot_validator: Callable[[bytes], bool] = accept_any_snapshot,
                 proposal_validator: Callable[[bytes], bool] = accept_any_proposal) -> None:
        self.config = config
        self.id = config.id
        self.rng = rng
        state = persisted if persisted is not None else PersistedState()
        self.log = RaftLog(state.snapshot, list(state.entries), state.hard_state.commit)
        # Configurations by index (thesis 4.1); set_membership derives peers, voter_peers, quorum.
        self.conf_history = reconfig.initial_history(config.members, state, self.log.entries)
        self.membership: Membership = Membership(())
        self.peers: tuple[str, ...] = ()
        self.peer_set: frozenset[str] = frozenset()
        self.voter_peers: tuple[str, ...] = ()
        self.quorum = 1
        self.role = Role.FOLLOWER
        reconfig.set_membership(self, self.conf_history.current())
        self.prev_membership = self.membership
        # Persistent state (Raft figure 2): current_term and voted_for.
        self.current_term = state.hard_state.term
        self.voted_for: str | None = state.hard_state.vote
        # After a repair wiped this member's log (node/store.py, docs/raft.md "Repair"): the
        # last index it had. Entries it acknowledged up to there may be part of commits that
        # no longer hold without it, so until its stored log reaches this index again it must
        # neither vote nor campaign, or an election could pass over a committed entry (the
        # intersection argument of Raft 5.4 assumes voters keep what they acknowledged).
        # Cleared by advance() once is_caught_up() holds; 0 otherwise.
        self.catch_up_index = state.catch_up_index
        # The term at the repair: the member acknowledged no entry of a later term. Unknown
        # (an older store) means the persisted term, which is no lower: stricter, never unsafe.
        self.catch_up_term = (state.catch_up_term if state.catch_up_term is not None
                              else state.hard_state.term)
        self.leader_id: str | None = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_ticks = config.election_ticks
        self.votes: dict[str, bool] = {}
        self.progress: dict[str, Progress] = {}
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.lead_transferee: str | None = None
        # ReadIndex on the leader (thesis section 6.4): reads wait for a heartbeat round
        # whose sequence number is at least theirs to be acknowledged by a quorum.
        self.read_seq = 0
        self.read_acks: dict[str, int] = {}
        self.pending_reads: list[tuple[int, int, bytes, str]] = []
        # Reads that arrived before the leader committed an entry of its term (thesis 6.4).
        self.reads_before_commit: list[tuple[bytes, str]] = []
        self.needs_read_heartbeat = False
        # An InstallSnapshot being received in chunks: its meta, its sender and the bytes so
        # far. Invariant: it holds chunks of one sender in current_term only (reset() clears
        # it on a term change, roles.handle_install_snapshot on a new sender), so no snapshot
        # is ever assembled from the chunks of two leaders.
        self.snapshot_receiving: tuple[SnapshotMeta, str, bytearray] | None = None
        self.snapshot_validator = snapshot_validator
        # InstallSnapshots refused (roles.refuse_snapshot): in total, and by SnapshotRefusal
        # value. Invariant: snapshots_rejected == sum(snapshots_rejected_by_reason.values()).
        self.snapshots_rejected = 0
        self.snapshots_rejected_by_reason: dict[str, int] = {r.value: 0 for r in SnapshotRefusal}
        self.proposal_validator = proposal_validator
        # Forwarded proposals the leader dropped because the validator refused them.
        self.proposals_rejected = 0
        # Set when peers may need an AppendEntries; ready() sends one per peer (batching).
        self.needs_flush = False
        # Peers owed an AppendEntries even when it carries no entries (a new commit index,
        # or a probe for appends lost in flight).
        self.append_pending: set[str] = set()
        self.step_role: Callable[[Raft, Message], None] = roles.step_follower
        self.prev_hard_state = HardState(self.current_term, self.voted_for, self.log.committed)
        self.prev_soft_state = SoftState(None, Role.FOLLOWER)
        self.become_follower(self.current_term, None)

    # ----------------------------------------------------------------- public input

    def tick(self) -> None:
        """Advance logical time by one tick: election timeout or heartbeat (Raft 5.2)."""
        if self.role is Role.LEADER:
            self.tick_heartbeat()
        else:
            self.tick_election()

    def step(self, m: Message) -> None:
        """Handle one message from a peer.

        Term rules first (Raft figure 2, "All Servers": a higher term makes us a follower;
        a lower term is stale), then the role's step function.
        """
        if m.term > MAX_PEER_TERM:
            return  # Invariant: current_term stays far below MAX_RAFT_INT (MAX_PEER_TERM).
        if m.sender == self.id:
            return
        if m.sender not in self.peer_set and m.type not in _VOTE_REQUESTS and not (
                m.term >= self.current_term and m.type in _FROM_LEADER):
            # Only members take part (Raft 5.2), but our configuration may be behind the
            # sender's (thesis 4.1): a leader's appends reach a new member before it knows it
            # is one, and a vote request is answered whoever asks, or a voter added in a
            # configuration we have not appended yet could never be elected by our vote (the
            # candidate counts only its own voters). A removed member that missed its removal
            # lacks an entry every member that dropped it holds, so it gets no vote from them,
            # and the lease (election.in_leader_lease) keeps it from moving terms (4.2.3).
            # Never a TimeoutNow: a stranger may not even move our term with one.
            return
        if m.term == 0:
            if m.type not in _FORWARDED:
                return  # Only forwarded requests may lack a term; anything else is garbage.
        elif m.term > self.current_term:
            if m.type in _VOTE_REQUESTS and election.in_leader_lease(self, m):
                return  # Check-quorum lease (thesis 4.2.3): our leader is alive.
            if m.type is MessageType.PRE_VOTE:
                pass  # A pre-vote never changes our term (thesis 9.6).
            elif m.type is MessageType.PRE_VOTE_RESPONSE and not m.reject:
                pass  # The term is ours to take once a quorum granted the pre-vote.
            elif m.type in _FROM_LEADER:
                self.become_follower(m.term, m.sender)
            else:
                self.become_follower(m.term, None)
        elif m.term < self.current_term:
            if ((self.config.check_quorum or self.config.pre_vote)
                    and m.type in (MessageType.HEARTBEAT, MessageType.APPEND_ENTRIES)):
                # A stale leader must learn our term, or with pre-vote and check-quorum it
                # could keep its followers from electing anyone (etcd-io/raft's argument).
                self.send(Message(MessageType.APPEND_ENTRIES_RESPONSE, m.sender, self.id,
                                  self.current_term))
            elif m.type is MessageType.PRE_VOTE:
                self.send(Message(MessageType.PRE_VOTE_RESPONSE, m.sender, self.id,
                                  self.current_term, reject=True))
            return
        if m.type in _VOTE_REQUESTS:
            election.handle_vote_request(self, m)
        else:
            self.step_role(self, m)

    def propose(self, data: bytes) -> None:
        """Replicate ``data`` as a new entry.

        A leader appends it (sent with the next ``ready()``, batched with every other
        waiting proposal); a follower forwards it to its leader.

        Raises:
            ProposalDropped: no leader is known, or a leadership transfer is under way.
        """
        entry = Entry(0, 0, EntryType.NORMAL, data)
        if self.role is Role.LEADER:
            if self.lead_transferee is not None:
                raise ProposalDropped(self.lead_transferee)
            self.append_entries((entry,))
        elif self.leader_id is not None and self.role is Role.FOLLOWER:
            self.send(Message(MessageType.PROPOSE, self.leader_id, self.id, 0,
                              entries=(entry,)))
        else:
            raise ProposalDropped(self.leader_id)

    def propose_conf_change(self, change: ConfChange) -> None:
        """Append a single-server membership change (thesis 4.1); it is in force at once.

        Raises:
            ProposalDropped: not the leader, a transfer is under way, no entry of this
                leader's term is committed yet, or another change is uncommitted.
            ValueError: ``change`` does not fit the configuration in force.
        """
        after = reconfig.check_can_propose(self, change)
        self.append_entries((reconfig.conf_entry(change, after),))

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read point (thesis section 6.4, ReadIndex).

        The answer is a ``ReadState(index, context)`` in a later Ready: serve the read once
        the state machine has applied ``index``. With no leader known the request is dropped
        and the caller's deadline answers it.
        """
        if self.role is Role.LEADER:
            roles.leader_read(self, context, self.id)
        elif self.leader_id is not None and self.role is Role.FOLLOWER:
            self.send(Message(MessageType.READ_INDEX, self.leader_id, self.id, 0,
                              context=context))

    def peer_lost(self, peer: str) -> None:
        """The node saw its connection to ``peer`` close (the peer's process died).

        When ``peer`` is our leader, its lease ends now (thesis 4.2.3: the lease is the time
        we believe it alive, and we know it is not) and our election timer is moved on to one
        tick short of the base timeout, so that only the random part of our timeout is left
        (Raft 5.2: that part still spreads the followers' campaigns). Safety never depends on
        when an election starts; pre-vote (thesis 9.6) keeps a follower that lost only its
        own connection from disrupting a leader the others still hear.
        """
        if self.role is not Role.FOLLOWER or peer != self.leader_id:
            return
        self.leader_id = None
        self.election_elapsed = max(self.election_elapsed, self.config.election_ticks - 1)

    def transfer_leadership(self, target: str) -> None:
        """Hand leadership to ``target`` (thesis section 3.10), e.g. before a shutdown.

        The leader stops accepting proposals, brings ``target`` up to date, then sends it
        TimeoutNow. The attempt is abandoned after an election timeout. A no-op on a
        non-leader or for an unknown target.
        """
        if (self.role is not Role.LEADER or target == self.id or target not in self.progress
                or not self.membership.is_voter(target) or not self.membership.is_voter(self.id)):
            # A learner may never lead: it is not counted in any majority. A leader that
            # removed itself is no voter of its followers' configuration: they refuse its
            # TimeoutNow (roles.step_follower, thesis 4.2.2).
            return
        if self.lead_transferee == target:
            return
        self.lead_transferee = target
        # The transfer must finish within one election timeout (thesis 3.10).
        self.election_elapsed = 0
        if self.progress[target].match_index == self.log.last_index():
            self.send(Message(MessageType.TIMEOUT_NOW, target, self.id, self.current_term))
        else:
            self.needs_flush = True

    def compact(self, index: int, data: bytes) -> None:
        """The app saved a snapshot of its state at applied ``index``: drop the log behind it.

        Raises:
            ValueError: ``index`` is beyond what was applied.
        """
        if index <= self.log.snapshot_index:
            return
        if index > self.log.applied:
            raise ValueError(f"cannot compact at {index}: only {self.log.applied} applied")
        term = self.log.term(index)
        assert term is not None  # applied entries above the snapshot are in the log
        meta = SnapshotMeta(index, term, self.conf_history.at(index), snapshot_checksum(data))
        self.log.compact(Snapshot(meta, data))
        self.conf_history.compact(index)

    # ----------------------------------------------------------------- output

    def has_ready(self) -> bool:
        """True when ``ready()`` would have something to persist, send or apply."""
        if (self.msgs or self.needs_flush or self.needs_read_heartbeat or self.read_states
                or self.prev_membership is not self.membership):
            return True
        log = self.log
        if (log.unstable_from <= log.last_index() or log.pending_snapshot is not None
                or log.committed > log.applied):
            return True
        soft = self.prev_soft_state
        if soft.leader_id != self.leader_id or soft.role is not self.role:
            return True
        hard = self.prev_hard_state
        return (hard.term != self.current_term or hard.vote != self.voted_for
                or hard.commit != log.committed)

    def ready(self) -> Ready:
        """Pull everything to persist, send and apply; first flush batched appends."""
        if self.needs_flush:
            self.needs_flush = False
            roles.broadcast_append(self)
        if self.needs_read_heartbeat:
            self.needs_read_heartbeat = False
            roles.broadcast_heartbeat(self)
        log = self.log
        soft_state = None
        soft = self.prev_soft_state
        if soft.leader_id != self.leader_id or soft.role is not self.role:
            soft_state = self.prev_soft_state = SoftState(self.leader_id, self.role)
        hard_state = None
        hard = self.prev_hard_state
        if (hard.term != self.current_term or hard.vote != self.voted_for
                or hard.commit != log.committed):
            hard_state = self.prev_hard_state = self.hard_state()
        ready = Ready(
            soft_state=soft_state,
            hard_state=hard_state,
            entries=tuple(log.unstable_entries()),
            snapshot=log.pending_snapshot,
            committed_entries=tuple(log.next_committed()),
            messages=tuple(self.msgs),
            read_states=tuple(self.read_states),
            membership=None if self.prev_membership is self.membership else self.membership,
        )
        self.prev_membership = self.membership
        if self.msgs:
            self.msgs = []
        if self.read_states:
            self.read_states = []
        return ready

    def advance(self, ready: Ready) -> None:
        """The node persisted, sent and applied ``ready``."""
        log = self.log
        if ready.snapshot is not None:
            log.snapshot_persisted(ready.snapshot)
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
            if self.role is Role.LEADER:
                # The leader's own entries count toward commit only once on its disk
                # (Raft section 5.3 counts the leader among the replicas that stored them).
                self.maybe_commit()
        if self.catch_up_index and log.pending_snapshot is None and self.is_caught_up():
            self.catch_up_index = 0
        if ready.committed_entries:
            log.applied_to(ready.committed_entries[-1].index)

    def is_caught_up(self) -> bool:
        """A repaired member's votes are safe again (docs/raft.md, "Repair", has the proof).

        Either its stored log reaches the catch-up index (the old last index) again, or it
        stores, and has seen committed, an entry of a term above ``catch_up_term``: every
        entry it acknowledged before the repair has a term at most ``catch_up_term``, so if
        committed it is in the log of the leader of that later term (Leader Completeness,
        5.4.3), below that leader's first entry of its term (terms never decrease along a
        log), and so in this log, which holds that leader's log up to the entry (Log
        Matching, 5.3). An entry of ``catch_up_term`` itself proves nothing: the old leader of
        that term may commit entries above it by counting the acknowledgements this member
        lost. A snapshot still to be persisted counts for nothing (``advance`` checks first).
        """
        log = self.log
        if log.stable_index >= self.catch_up_index:
            return True
        # Terms never decrease along a log, so the last entry both stored and committed has
        # the highest term of all such entries.
        held = min(log.committed, log.stable_index)
        return (log.term(held) or 0) > self.catch_up_term

    def status(self) -> Status:
        """A frozen picture of this member."""
        return Status(
            id=self.id, role=self.role, term=self.current_term, vote=self.voted_for,
            leader_id=self.leader_id, commit=self.log.committed, applied=self.log.applied,
            last_index=self.log.last_index(), snapshot_index=self.log.snapshot_index,
            progress={p: pr.to_status() for p, pr in self.progress.items()},
            lead_transferee=self.lead_transferee, catch_up_index=self.catch_up_index,
            membership=self.membership, removed=reconfig.is_removed(self),
        )

    def hard_state(self) -> HardState:
        """The current HardState (term, vote, commit)."""
        return HardState(self.current_term, self.voted_for, self.log.committed)

    # ----------------------------------------------------------------- roles

    def reset(self, term: int) -> None:
        """Clear per-term volatile state; a new term clears the vote (Raft figure 2)."""
        if term != self.current_term:
            self.current_term = term
            self.voted_for = None
            # Chunks of an older term's leader never mix with the new leader's (see __init__).
            self.snapshot_receiving = None
        self.leader_id = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        # Randomized election timeouts split votes rarely (Raft section 5.2).
        election_ticks = self.config.election_ticks
        self.randomized_election_ticks = election_ticks + self.rng.randrange(election_ticks)
        self.votes = {}
        self.progress = {}
        self.lead_transferee = None
        self.pending_reads = []
        self.reads_before_commit = []
        self.read_acks = {}
        self.needs_read_heartbeat = False
        self.append_pending = set()

    def become_follower(self, term: int, leader_id: str | None) -> None:
        """Follow ``leader_id`` (None: unknown) in ``term``."""
        self.reset(term)
        self.step_role = roles.step_follower
        self.leader_id = leader_id
        self.role = Role.FOLLOWER

    def become_pre_candidate(self) -> None:
        """Start a pre-vote round: neither term nor vote changes (thesis 9.6)."""
        self.reset(self.current_term)
        self.step_role = roles.step_candidate
        self.role = Role.PRE_CANDIDATE

    def become_candidate(self) -> None:
        """Start an election: new term, vote for self (Raft section 5.2)."""
        self.reset(self.current_term + 1)
        self.step_role = roles.step_candidate
        self.voted_for = self.id
        self.role = Role.CANDIDATE

    def become_leader(self) -> None:
        """Won the election: take over replication and append a no-op (Raft 5.4.2, 8)."""
        self.reset(self.current_term)
        self.step_role = roles.step_leader
        self.leader_id = self.id
        self.role = Role.LEADER
        next_index = self.log.last_index() + 1
        max_inflight = self.config.max_inflight_msgs
        self.progress = {p: Progress(next_index, max_inflight) for p in self.peers}
        # The no-op lets the leader commit, and so learn the commit index (Raft section 8).
        self.append_entries((Entry(0, 0, EntryType.NOOP, b""),))

    def campaign(self, pre_vote: bool, transfer: bool = False) -> None:
        """Start a (pre-)election now, if this member may (``election.campaign``)."""
        election.campaign(self, pre_vote, transfer)

    # ----------------------------------------------------------------- timers

    def tick_election(self) -> None:
        """Follower and candidates: start an election when the timeout expires (Raft 5.2)."""
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_election_ticks:
            self.election_elapsed = 0
            # An election timeout without word from the leader ends its lease (thesis 4.2.3),
            # also on a member that may not campaign (a learner, a removed or repaired one):
            # keeping leader_id while the timer restarts would renew the lease forever, and
            # it would ignore every vote request (seed 1535 of --membership: a learner that a
            # pending change promotes never answered the one candidate that could win).
            self.leader_id = None
            self.campaign(self.config.pre_vote)

    def tick_heartbeat(self) -> None:
        """Leader: heartbeats every heartbeat_ticks; check-quorum every election_ticks."""
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_ticks:
            self.election_elapsed = 0
            if self.config.check_quorum:
                progress = self.progress
                active = reconfig.voter_count(self, lambda p: progress[p].recent_active)
                if active < self.quorum:
                    # Check-quorum (thesis 6.2): a leader cut off from a majority steps down
                    # so that clients look for the real leader.
                    self.become_follower(self.current_term, None)
                    return
                for pr in self.progress.values():
                    pr.recent_active = False
            if self.lead_transferee is not None:
                # The transfer did not finish in an election timeout: resume service.
                self.lead_transferee = None
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            roles.broadcast_heartbeat(self)

    # ----------------------------------------------------------------- helpers

    def send(self, m: Message) -> None:
        """Queue ``m`` for the next Ready."""
        self.msgs.append(m)

    def append_entries(self, entries: tuple[Entry, ...]) -> None:
        """Leader: give ``entries`` their index and term and append them (Raft 5.3).

        They go to the peers with the next ``ready()`` and count toward commit for this
        member only after ``advance()`` (once persisted).
        """
        index = self.log.last_index()
        term = self.current_term
        numbered = []
        for entry in entries:
            index += 1
            numbered.append(Entry(index, term, entry.type, entry.data))
        self.log.append(numbered)
        self.needs_flush = True
        if any(e.type is EntryType.CONF_CHANGE for e in numbered):
            reconfig.sync_membership(self, numbered[0].index)

    def maybe_commit(self) -> bool:
        """Leader: commit the highest index stored on a quorum, if it is of the current
        term (Raft section 5.4.2: never by counting replicas of an older term's entry).

        Returns True when the commit index moved.
        """
        # A majority of the voters in force (thesis 4.1).
        matches = reconfig.voter_match_indexes(self)
        matches.sort(reverse=True)
        index = matches[self.quorum - 1]
        if index <= self.log.committed or self.log.term(index) != self.current_term:
            return False
        self.log.commit_to(index)
        # Followers learn the new commit index with the next AppendEntries or heartbeat
        # (figure 2: leaderCommit rides on every AppendEntries), not with an empty append sent
        # now: under load the next batch carries it within a loop turn, and an idle cluster's
        # followers learn it within heartbeat_ticks. Safety does not depend on when a follower
        # learns it (5.3); sending at once cost each commit a message to and from every
        # follower.
        self.needs_flush = True
        roles.release_reads_before_commit(self)
        reconfig.on_commit(self)
        return True
