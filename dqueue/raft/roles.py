"""Role step functions and replication for the Raft core (dqueue.raft.core.Raft).

A member swaps ``step_follower``, ``step_candidate`` or ``step_leader`` in as its step
function when it changes role (etcd-io/raft's design). ``Raft.step`` has already applied the
term rules when these run, so every message here carries the member's current term (or term
0 for the forwarded PROPOSE and READ_INDEX).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dqueue.raft import election, reconfig
from dqueue.raft.progress import Progress
from dqueue.raft.types import (
    MAX_ENTRIES_PER_MESSAGE,
    MAX_SNAPSHOT_INDEX,
    EntryType,
    Message,
    MessageType,
    ProgressState,
    ReadState,
    Role,
    Snapshot,
    SnapshotMeta,
    SnapshotRefusal,
    snapshot_checksum,
)

if TYPE_CHECKING:
    from dqueue.raft.core import Raft

_MT = MessageType


# ------------------------------------------------------------------- follower


def step_follower(r: Raft, m: Message) -> None:
    """Follower: obey the leader of the term, time out when it goes quiet (Raft 5.2)."""
    t = m.type
    if t is _MT.APPEND_ENTRIES:
        r.election_elapsed = 0
        r.leader_id = m.sender
        handle_append_entries(r, m)
    elif t is _MT.HEARTBEAT:
        r.election_elapsed = 0
        r.leader_id = m.sender
        handle_heartbeat(r, m)
    elif t is _MT.INSTALL_SNAPSHOT:
        r.election_elapsed = 0
        r.leader_id = m.sender
        handle_install_snapshot(r, m)
    elif t is _MT.TIMEOUT_NOW:
        # Leadership transfer (thesis 3.10): campaign now, past pre-vote and the lease. Only
        # the leader of the term may ask: from any other member it would let one buggy peer
        # depose a healthy leader at will. The leader sends it to a target that acknowledged
        # its whole log, so the target knows it (after a restart, the next heartbeat tells it,
        # and the leader sends TimeoutNow again on the answer). And only a leader that is a
        # voter in our configuration: one that removed itself still leads until its removal
        # commits (thesis 4.2.2), but may not pick who follows it; the node transfers first
        # and removes after. campaign() refuses anyway when we are no voter ourselves (4.2.2).
        if m.sender == r.leader_id and r.membership.is_voter(m.sender):
            r.campaign(False, transfer=True)
    elif t is _MT.READ_INDEX_RESPONSE and m.sender == r.leader_id:
        # A read point only the leader of the term can give (thesis 6.4): from another
        # member it could be stale, and the read would not be linearizable.
        r.read_states.append(ReadState(m.index, m.context))
    # PROPOSE and READ_INDEX reach a follower only when the sender's leader hint was stale;
    # forwarding them again could loop, so they are dropped and the client retries.


def handle_append_entries(r: Raft, m: Message) -> None:
    """AppendEntries receiver (Raft figure 2), answering with a conflict hint on reject."""
    log = r.log
    if m.index < log.committed:
        # Everything up to our commit index matches the leader already (Raft 5.4 Log
        # Matching with Leader Completeness): say so, so it can skip ahead.
        r.send(Message(_MT.APPEND_ENTRIES_RESPONSE, m.sender, r.id, r.current_term,
                       index=log.committed))
        return
    last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
    if last_new is not None:
        if m.entries:
            # Appended configurations are in force now, truncated ones are not (thesis 4.1).
            reconfig.sync_membership(r, m.index + 1)
        r.send(Message(_MT.APPEND_ENTRIES_RESPONSE, m.sender, r.id, r.current_term,
                       index=last_new))
        return
    # Fast backtracking (Raft 5.3): point the leader at the last index whose term is no
    # greater than its prev_log_term; every entry above it cannot match.
    hint_index, hint_term = log.find_conflict_by_term(min(m.index, log.last_index()), m.log_term)
    r.send(Message(_MT.APPEND_ENTRIES_RESPONSE, m.sender, r.id, r.current_term, index=m.index,
                   reject=True, reject_hint=hint_index, log_term=hint_term))


def handle_heartbeat(r: Raft, m: Message) -> None:
    """Heartbeat: learn the commit index (never beyond what we hold) and echo the read seq."""
    log = r.log
    # The leader sends min(our match, its commit), so the entries below it match its log.
    last_index = log.last_index()
    log.commit_to(min(m.commit, last_index))
    # A commit above our last index means the leader counts entries we no longer hold: only
    # a repair (a wiped log) loses acknowledged entries. Say so, with our last index, or the
    # leader would keep sending from its old match point and drop our rejections as stale.
    lost = m.commit > last_index
    r.send(Message(_MT.HEARTBEAT_RESPONSE, m.sender, r.id, r.current_term, index=m.index,
                   reject=lost, reject_hint=last_index if lost else 0))


def handle_install_snapshot(r: Raft, m: Message) -> None:
    """InstallSnapshot receiver (Raft figure 13), one chunk at a time.

    Chunks must arrive in order; each answer names the next offset wanted, so a lost or
    duplicated chunk costs one retransmission and nothing else. The buffer holds one
    sender's chunks of one snapshot in the current term (``Raft.snapshot_receiving``); a
    snapshot is installed only when its assembled bytes match the checksum of its meta and
    the validator accepts them (``accept_snapshot``). A chunk whose meta no leader can send
    (``implausible_meta``) or that would grow the buffer beyond ``max_snapshot_bytes`` is
    refused (``refuse_snapshot``).
    """
    meta = m.snapshot_meta
    if meta is None:
        return
    refusal = implausible_meta(meta, m.term)
    if refusal is not None:
        refuse_snapshot(r, refusal)
        return
    receiving = r.snapshot_receiving
    if receiving is not None and receiving[1] != m.sender:
        # A new sender in this term: its chunks never extend another sender's transfer.
        receiving = r.snapshot_receiving = None
    if m.offset == 0 and (receiving is None or receiving[0] != meta):
        receiving = r.snapshot_receiving = (meta, m.sender, bytearray())
    if receiving is None or receiving[0] != meta:
        # A chunk of a transfer we never started (we restarted): ask for it from the start.
        r.send(Message(_MT.INSTALL_SNAPSHOT_RESPONSE, m.sender, r.id, r.current_term,
                       snapshot_meta=meta, index=0))
        return
    buffer = receiving[2]
    if m.offset == len(buffer):
        if len(buffer) + len(m.data) > r.config.max_snapshot_bytes:
            # Invariant: the receive buffer never holds more than max_snapshot_bytes, whatever
            # a leader sends (a buggy one could send chunks without end).
            refuse_snapshot(r, SnapshotRefusal.TOO_LARGE)
            return
        buffer += m.data
        if m.done:
            r.snapshot_receiving = None
            snapshot = Snapshot(meta, bytes(buffer))
            refusal = accept_snapshot(r, snapshot)
            if refusal is not None:
                refuse_snapshot(r, refusal)
                return
            restore_snapshot(r, snapshot)
            # Answer with the commit index, never the last index: entries above the commit
            # index may be a stale suffix that does not match the leader (Raft 5.3).
            r.send(Message(_MT.INSTALL_SNAPSHOT_RESPONSE, m.sender, r.id, r.current_term,
                           snapshot_meta=meta, index=r.log.committed, done=True))
            return
    r.send(Message(_MT.INSTALL_SNAPSHOT_RESPONSE, m.sender, r.id, r.current_term,
                   snapshot_meta=meta, index=len(buffer)))


def implausible_meta(meta: SnapshotMeta, message_term: int) -> SnapshotRefusal | None:
    """Why no correct leader could send an InstallSnapshot with ``meta`` in a message of
    ``message_term``, or None when one could.

    - The last included term is the term of an entry in the leader's log, and a member's
      current_term is never below the term of an entry it holds (entries are created by a
      leader in its term, Raft 5.3, and a member adopts a term before it takes its entries,
      figure 2). Installed, a higher term would make this member's log look more up to date
      than the logs that hold the committed entries, and it could win an election without
      them (the election restriction of Raft 5.4.1 assumes log terms are real).
    - The last included index is at most MAX_SNAPSHOT_INDEX (types.py: a member installing it
      could never take another entry).
    """
    if meta.term > message_term:
        return SnapshotRefusal.TERM_ABOVE_MESSAGE
    if meta.index > MAX_SNAPSHOT_INDEX:
        return SnapshotRefusal.INDEX_TOO_HIGH
    return None


def refuse_snapshot(r: Raft, reason: SnapshotRefusal) -> None:
    """Drop an InstallSnapshot unanswered and count it: nothing is persisted or acknowledged,
    the log, commit index and state machine stay as they were, and the receive buffer is
    dropped (Invariant: a refused chunk leaves no partial snapshot behind). The leader's
    heartbeats resend a chunk, which restarts the transfer from offset 0."""
    r.snapshot_receiving = None
    r.snapshots_rejected += 1
    r.snapshots_rejected_by_reason[reason.value] += 1


def accept_snapshot(r: Raft, snapshot: Snapshot) -> SnapshotRefusal | None:
    """Why a snapshot received whole may not be installed, or None when it may: its data must
    match the checksum its leader computed (``Raft.compact``), then, when its data would
    replace the log, the node's validator must accept it. Both run before the snapshot reaches
    a Ready, so a snapshot that would fail to restore is never persisted (a persisted one would
    fail again at every restart). The validator is not asked about data that would not be
    used: the node keeps the state it restored until the install, which would then never
    come."""
    if snapshot_checksum(snapshot.data) != snapshot.meta.checksum:
        return SnapshotRefusal.CHECKSUM
    if replaces_log(r, snapshot) and not r.snapshot_validator(snapshot.data):
        return SnapshotRefusal.INVALID
    return None


def replaces_log(r: Raft, snapshot: Snapshot) -> bool:
    """Whether installing ``snapshot`` discards the log (Raft figure 13, receiver step 7),
    rather than finding everything it holds committed or in the log already (step 6)."""
    meta = snapshot.meta
    return meta.index > r.log.committed and not r.log.match_term(meta.index, meta.term)


def restore_snapshot(r: Raft, snapshot: Snapshot) -> None:
    """Take a complete snapshot from the leader (Raft figure 13, receiver steps 6 to 8)."""
    log = r.log
    meta = snapshot.meta
    if replaces_log(r, snapshot):
        # Step 7: discard the entire log; the state machine restarts from the snapshot.
        log.restore(snapshot)
        reconfig.reset_to_snapshot(r, meta.index, meta.membership)
    elif meta.index > log.committed:
        # Step 6: the log holds the snapshot's last entry: keep what follows, commit to it.
        log.commit_to(meta.index)
    # Otherwise everything it holds is committed here already.


# ------------------------------------------------------------------- candidates


def step_candidate(r: Raft, m: Message) -> None:
    """Candidate and pre-candidate: count votes, yield to a leader of this term (Raft 5.2)."""
    t = m.type
    if t in (_MT.APPEND_ENTRIES, _MT.HEARTBEAT, _MT.INSTALL_SNAPSHOT):
        # A leader of our term exists (Raft 5.2): return to follower and obey it.
        r.become_follower(m.term, m.sender)
        step_follower(r, m)
        return
    expected = (_MT.PRE_VOTE_RESPONSE if r.role is Role.PRE_CANDIDATE
                else _MT.REQUEST_VOTE_RESPONSE)
    if t is not expected or not r.membership.is_voter(m.sender):
        return  # Only voters' answers count (a learner never votes, thesis 4.1).
    granted, rejected = election.poll(r, m.sender, not m.reject)
    if granted >= r.quorum:
        if r.role is Role.PRE_CANDIDATE:
            r.campaign(False)
        else:
            r.become_leader()
    elif rejected >= r.quorum:
        r.become_follower(r.current_term, None)


# ------------------------------------------------------------------- leader


def step_leader(r: Raft, m: Message) -> None:
    """Leader: accept proposals and reads, drive replication from the responses."""
    t = m.type
    if t is _MT.PROPOSE:
        # Forwarded by a follower. Dropped while a transfer runs, like a local proposal.
        if r.lead_transferee is None and m.entries:
            if all(e.type is not EntryType.CONF_CHANGE for e in m.entries) and all(
                    r.proposal_validator(e.data) for e in m.entries
                    if e.type is EntryType.NORMAL):
                r.append_entries(m.entries)
            else:
                # Never appended: committed, an entry no member can apply would stop them
                # all (the follower's client hears nothing and times out). A forwarded
                # membership change would skip propose_conf_change's checks (thesis 4.1).
                r.proposals_rejected += 1
        return
    if t is _MT.READ_INDEX:
        leader_read(r, m.context, m.sender)
        return
    pr = r.progress.get(m.sender)
    if pr is None:
        return
    acked = ((t is _MT.APPEND_ENTRIES_RESPONSE and not m.reject)
             or (t is _MT.INSTALL_SNAPSHOT_RESPONSE and m.done))
    if acked and m.index > r.log.last_index():
        # Acknowledges entries this leader never sent (a buggy peer): taken, it would put
        # match_index past the log (invariant: match_index <= last index, figure 2) and
        # stall replication to that peer for the rest of the term.
        return
    if t is _MT.APPEND_ENTRIES_RESPONSE:
        pr.recent_active = True
        handle_append_response(r, pr, m)
    elif t is _MT.HEARTBEAT_RESPONSE:
        pr.recent_active = True
        handle_heartbeat_response(r, pr, m)
    elif t is _MT.INSTALL_SNAPSHOT_RESPONSE:
        pr.recent_active = True
        handle_snapshot_response(r, pr, m)


def handle_append_response(r: Raft, pr: Progress, m: Message) -> None:
    """Move next_index/match_index on an AppendEntries answer (Raft 5.3)."""
    if m.reject:
        hint = m.reject_hint
        if m.log_term > 0:
            # Skip the follower's whole conflicting term in one round trip.
            hint = r.log.find_conflict_by_term(m.reject_hint, m.log_term)[0]
        if pr.maybe_decrease_to(m.index, hint):
            if pr.state is ProgressState.REPLICATE:
                pr.become_probe()
            r.needs_flush = True
        return
    was_paused = pr.is_paused()
    if not pr.maybe_update(m.index):
        if pr.state is ProgressState.REPLICATE:
            pr.free_inflight(m.index)
        maybe_send_timeout_now(r, pr, m.sender)
        return
    if pr.state is ProgressState.PROBE:
        pr.become_replicate()
    elif pr.state is ProgressState.SNAPSHOT:
        if pr.match_index >= pr.snapshot_index:
            pr.become_replicate()
    else:
        pr.free_inflight(m.index)
    if r.maybe_commit() or was_paused or pr.next_index <= r.log.last_index():
        r.needs_flush = True
    maybe_send_timeout_now(r, pr, m.sender)


def maybe_send_timeout_now(r: Raft, pr: Progress, peer: str) -> None:
    """Leadership transfer (thesis 3.10): once the target holds the leader's whole log, tell
    it to start its election now.

    Called on every append and heartbeat response of the target while the transfer lasts (it
    ends when the target's election deposes this leader, or after an election timeout,
    ``Raft.tick_heartbeat``): a TimeoutNow lost on the way is sent again a heartbeat later
    instead of stalling the transfer, and proposals with it, for the whole election timeout.
    A repeat is harmless: the target campaigns only from a follower of this very term, and
    once it campaigned its term is higher and it ignores the rest as stale (figure 2).
    """
    if peer == r.lead_transferee and pr.match_index == r.log.last_index():
        r.send(Message(_MT.TIMEOUT_NOW, peer, r.id, r.current_term))


def handle_heartbeat_response(r: Raft, pr: Progress, m: Message) -> None:
    """A live follower: resume probing, resend what it lacks, count the read ack."""
    pr.probe_sent = False
    if m.reject and pr.lost_entries(m.reject_hint):
        r.append_pending.add(m.sender)
        r.needs_flush = True
    if pr.state is ProgressState.REPLICATE and len(pr.inflight) >= pr.max_inflight:
        # Appends may have been lost: free one slot so replication cannot stall forever.
        pr.inflight.popleft()
    if pr.match_index < r.log.last_index():
        # Appends sent while it was unreachable are lost: an append (even empty) at
        # next_index makes it reject and so restarts probing from where it really is.
        r.append_pending.add(m.sender)
        r.needs_flush = True
    elif m.sender in r.append_pending:
        r.needs_flush = True
    maybe_send_timeout_now(r, pr, m.sender)
    # A peer acknowledges at most the read round last sent (thesis 6.4): an echo of a round
    # not sent yet (a buggy peer) must not confirm a later read without its heartbeat round.
    seq = min(m.index, r.read_seq)
    if seq > r.read_acks.get(m.sender, 0):
        r.read_acks[m.sender] = seq
        confirm_reads(r)


def handle_snapshot_response(r: Raft, pr: Progress, m: Message) -> None:
    """Send the next InstallSnapshot chunk, or finish the transfer (Raft 7)."""
    meta = m.snapshot_meta
    snapshot = r.log.snapshot
    if pr.state is not ProgressState.SNAPSHOT or meta is None or snapshot is None:
        if m.done and pr.maybe_update(m.index):
            r.needs_flush = True
        return
    if meta.index != pr.snapshot_index:
        return  # An answer about an earlier transfer.
    if m.done:
        pr.maybe_update(m.index)
        pr.become_probe()
        r.needs_flush = True
        return
    if m.index == pr.snapshot_offset:
        return  # A duplicate; the heartbeat timer resends if the chunk was lost.
    pr.snapshot_offset = min(m.index, len(snapshot.data))
    send_snapshot_chunk(r, m.sender, pr)


# ------------------------------------------------------------------- replication


def broadcast_append(r: Raft) -> None:
    """Send each peer what it lacks: one AppendEntries per peer carries every waiting
    entry (batching), more while the pipeline has room and entries remain."""
    for peer in r.peers:
        pr = r.progress.get(peer)
        if pr is not None:
            maybe_send_append(r, peer, pr)


def maybe_send_append(r: Raft, peer: str, pr: Progress) -> None:
    """Send AppendEntries (or InstallSnapshot) to ``peer`` unless flow control forbids."""
    log = r.log
    config = r.config
    while not pr.is_paused():
        prev_index = pr.next_index - 1
        prev_term = log.term(prev_index)
        if prev_term is None:
            # The entries it needs are compacted: send the snapshot instead (Raft 7).
            if log.snapshot is None:
                return
            pr.become_snapshot(log.snapshot.meta.index)
            send_snapshot_chunk(r, peer, pr)
            return
        last_index = log.last_index()
        entries = ()
        if pr.next_index <= last_index:
            # At most MAX_ENTRIES_PER_MESSAGE: the receiver's codec refuses more.
            hi = min(last_index + 1, pr.next_index + MAX_ENTRIES_PER_MESSAGE)
            entries = tuple(log.slice(pr.next_index, hi, config.max_append_bytes))
        elif peer not in r.append_pending:
            return
        r.append_pending.discard(peer)
        r.send(Message(_MT.APPEND_ENTRIES, peer, r.id, r.current_term, log_term=prev_term,
                       index=prev_index, entries=entries, commit=log.committed))
        pr.sent_entries(prev_index + len(entries))
        if not entries or pr.next_index > last_index:
            return


def send_snapshot_chunk(r: Raft, peer: str, pr: Progress) -> None:
    """Send the InstallSnapshot chunk at the peer's acknowledged offset."""
    snapshot = r.log.snapshot
    if snapshot is None:
        return
    if snapshot.meta.index != pr.snapshot_index:
        # We compacted again since the transfer started: send the newer snapshot.
        pr.become_snapshot(snapshot.meta.index)
    offset = pr.snapshot_offset
    chunk = snapshot.data[offset:offset + r.config.snapshot_chunk_bytes]
    done = offset + len(chunk) >= len(snapshot.data)
    r.send(Message(_MT.INSTALL_SNAPSHOT, peer, r.id, r.current_term,
                   snapshot_meta=snapshot.meta, offset=offset, data=chunk, done=done))


def broadcast_heartbeat(r: Raft) -> None:
    """Leader: assert leadership (Raft 5.2), carry the read sequence, resend snapshot chunks."""
    committed = r.log.committed
    seq = r.read_seq
    for peer in r.peers:
        pr = r.progress[peer]
        r.send(Message(_MT.HEARTBEAT, peer, r.id, r.current_term,
                       commit=min(pr.match_index, committed), index=seq))
        if pr.state is ProgressState.SNAPSHOT:
            send_snapshot_chunk(r, peer, pr)


# ------------------------------------------------------------------- ReadIndex


def leader_read(r: Raft, context: bytes, requester: str) -> None:
    """Register a read at the commit index; answer once a heartbeat round confirms that
    this member is still the leader (thesis section 6.4)."""
    if r.log.term(r.log.committed) != r.current_term:
        # Until an entry of its term commits the leader may not know the commit index.
        r.reads_before_commit.append((context, requester))
        return
    if r.quorum == 1 and r.membership.is_voter(r.id):
        deliver_read(r, r.log.committed, context, requester)
        return
    r.read_seq += 1
    r.pending_reads.append((r.read_seq, r.log.committed, context, requester))
    r.needs_read_heartbeat = True


def release_reads_before_commit(r: Raft) -> None:
    """The first entry of this term committed: register the reads that waited for it."""
    waiting, r.reads_before_commit = r.reads_before_commit, []
    for context, requester in waiting:
        leader_read(r, context, requester)


def confirm_reads(r: Raft) -> None:
    """Answer every read whose heartbeat round a quorum acknowledged, oldest first."""
    acks = r.read_acks
    while r.pending_reads:
        seq, index, context, requester = r.pending_reads[0]
        if reconfig.voter_count(r, lambda peer, seq=seq: acks.get(peer, 0) >= seq) < r.quorum:
            return
        r.pending_reads.pop(0)
        deliver_read(r, index, context, requester)


def deliver_read(r: Raft, index: int, context: bytes, requester: str) -> None:
    """Hand a confirmed read point to its requester: ourselves or a follower."""
    if requester == r.id:
        r.read_states.append(ReadState(index, context))
    else:
        r.send(Message(_MT.READ_INDEX_RESPONSE, requester, r.id, r.current_term, index=index,
                       context=context))
