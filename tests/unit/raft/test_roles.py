"""Role step functions, driven message by message (paper-rule tests name their section)."""

from __future__ import annotations

import random

from dqueue.raft import (
    CAMPAIGN_TRANSFER,
    Entry,
    HardState,
    Membership,
    Message,
    MessageType,
    PersistedState,
    Raft,
    RaftConfig,
    Role,
    Snapshot,
    SnapshotMeta,
    snapshot_checksum,
)
from dqueue.raft.core import MAX_PEER_TERM

MT = MessageType
MEMBERS = ("n1", "n2", "n3")


def member(node_id: str = "n1", entries: list[Entry] | None = None, term: int = 0,
           **options: object) -> Raft:
    state = PersistedState(HardState(term, None, 0), None, entries or [])
    return Raft(RaftConfig(node_id, MEMBERS, **options), random.Random(7), state)  # type: ignore[arg-type]


def drain(raft: Raft) -> list[Message]:
    ready = raft.ready()
    raft.advance(ready)
    return list(ready.messages)


def make_leader(raft: Raft) -> None:
    """Campaign without pre-vote and collect one vote."""
    raft.campaign(False)
    drain(raft)
    raft.step(Message(MT.REQUEST_VOTE_RESPONSE, raft.id, "n2", raft.current_term))
    assert raft.role is Role.LEADER


def test_commit_only_entries_of_current_term_by_counting_replicas():
    """Raft section 5.4.2 (figure 8): a majority holding an entry of an older term does not
    commit it; the leader's own term entry does, and carries the older one with it."""
    raft = member(entries=[Entry(1, 1), Entry(2, 2)], term=2)
    make_leader(raft)  # term 3, no-op at index 3
    drain(raft)
    raft.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 3, index=2))
    assert raft.log.committed == 0
    raft.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 3, index=3))
    assert raft.log.committed == 3


def test_leader_own_entries_count_only_once_persisted():
    raft = member()
    make_leader(raft)
    raft.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 1, index=1))
    # n2 has the no-op but the leader has not yet persisted it: 1 of 3, no commit.
    assert raft.log.committed == 0
    ready = raft.ready()
    assert [e.index for e in ready.entries] == [1]
    raft.advance(ready)
    assert raft.log.committed == 1


def test_pre_vote_does_not_change_term_or_vote():
    """Thesis 9.6: pre-candidates keep their term; voters grant without recording a vote."""
    raft = member("n1")
    raft.campaign(True)
    assert raft.role is Role.PRE_CANDIDATE and raft.current_term == 0
    messages = drain(raft)
    assert {m.type for m in messages} == {MT.PRE_VOTE} and {m.term for m in messages} == {1}
    voter = member("n2")
    voter.step(messages[0])
    (answer,) = drain(voter)
    assert answer.type is MT.PRE_VOTE_RESPONSE and not answer.reject
    assert voter.current_term == 0 and voter.voted_for is None


def test_pre_vote_quorum_starts_real_election():
    raft = member("n1")
    raft.campaign(True)
    drain(raft)
    raft.step(Message(MT.PRE_VOTE_RESPONSE, "n1", "n2", 1))
    assert raft.role is Role.CANDIDATE and raft.current_term == 1 and raft.voted_for == "n1"


def test_check_quorum_lease_ignores_vote_requests():
    """Thesis 4.2.3: a member that heard from a leader recently ignores a disruptive
    candidate, unless the election is a leadership transfer."""
    raft = member("n2")
    raft.step(Message(MT.HEARTBEAT, "n2", "n1", 1))
    drain(raft)
    raft.step(Message(MT.REQUEST_VOTE, "n2", "n3", 2))
    assert raft.current_term == 1 and drain(raft) == []
    raft.step(Message(MT.REQUEST_VOTE, "n2", "n3", 2, context=CAMPAIGN_TRANSFER))
    assert raft.current_term == 2 and raft.voted_for == "n3"


def test_higher_term_makes_leader_follower():
    """Raft figure 2, all servers: a higher term converts to follower."""
    raft = member()
    make_leader(raft)
    raft.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 9))
    assert raft.role is Role.FOLLOWER and raft.current_term == 9


def test_stale_leader_is_told_the_current_term():
    raft = member("n2", term=5)
    raft.step(Message(MT.APPEND_ENTRIES, "n2", "n1", 3))
    (answer,) = drain(raft)
    assert answer.type is MT.APPEND_ENTRIES_RESPONSE and answer.term == 5


def test_conflict_hint_names_last_index_of_no_greater_term():
    """Fast backtracking (Raft 5.3): the hint skips the follower's conflicting term."""
    raft = member("n2", entries=[Entry(i, 1 if i <= 2 else 2) for i in range(1, 8)], term=2)
    raft.step(Message(MT.APPEND_ENTRIES, "n2", "n1", 4, index=7, log_term=3))
    (answer,) = drain(raft)
    assert answer.reject and (answer.reject_hint, answer.log_term) == (7, 2)
    leader = member("n1", entries=[Entry(i, 1 if i <= 2 else 3) for i in range(1, 8)], term=3)
    make_leader(leader)
    drain(leader)
    leader.progress["n2"].probe_sent = True
    leader.progress["n2"].next_index = 8
    leader.step(answer)
    # The leader has no entry of term 2: it goes straight back to index 2 (term 1).
    assert leader.progress["n2"].next_index == 3


def test_snapshot_chunks_assemble_in_order_and_restore():
    raft = member("n2", entries=[Entry(1, 1)], term=1)
    data = b"abcdefgh"
    meta = SnapshotMeta(10, 2, Membership(MEMBERS), snapshot_checksum(data))
    chunks = [(0, b"abc", False), (3, b"def", False), (6, b"gh", True)]
    raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n1", 2, snapshot_meta=meta, offset=3,
                      data=b"def"))
    (answer,) = drain(raft)
    assert answer.index == 0  # out of order: ask from the start
    for offset, chunk, done in chunks:
        raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n1", 2, snapshot_meta=meta,
                          offset=offset, data=chunk, done=done))
        if not done:
            drain(raft)
    ready = raft.ready()
    assert ready.snapshot == Snapshot(meta, data)
    assert ready.hard_state is not None and ready.hard_state.commit == 10
    assert [m.done for m in ready.messages] == [True]
    raft.advance(ready)
    assert (raft.log.applied, raft.log.last_index()) == (10, 10)


def test_leader_sends_snapshot_when_entries_are_compacted():
    raft = member(entries=[Entry(i, 1) for i in range(1, 6)], term=1,
                  snapshot_chunk_bytes=4)
    make_leader(raft)
    ready = raft.ready()
    raft.advance(ready)
    raft.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 2, index=6))
    drain(raft)
    raft.log.applied_to(raft.log.committed)
    raft.compact(6, b"0123456789")
    raft.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n3", 2))
    # n3 was probed at index 5, which is now compacted: it gets the snapshot, in chunks.
    (chunk,) = [m for m in drain(raft) if m.to == "n3"]
    assert chunk.type is MT.INSTALL_SNAPSHOT and chunk.data == b"0123" and not chunk.done
    meta = chunk.snapshot_meta
    raft.step(Message(MT.INSTALL_SNAPSHOT_RESPONSE, "n1", "n3", 2, snapshot_meta=meta, index=4))
    (chunk,) = [m for m in drain(raft) if m.to == "n3"]
    assert (chunk.offset, chunk.data, chunk.done) == (4, b"4567", False)
    raft.step(Message(MT.INSTALL_SNAPSHOT_RESPONSE, "n1", "n3", 2, snapshot_meta=meta, index=8))
    (chunk,) = [m for m in drain(raft) if m.to == "n3"]
    assert (chunk.offset, chunk.data, chunk.done) == (8, b"89", True)
    raft.step(Message(MT.INSTALL_SNAPSHOT_RESPONSE, "n1", "n3", 2, snapshot_meta=meta, index=6,
                      done=True))
    assert raft.progress["n3"].match_index == 6


def test_read_index_waits_for_quorum_heartbeat_acks():
    """Thesis 6.4: a read is served only after a heartbeat round confirms leadership."""
    raft = member()
    make_leader(raft)
    drain(raft)
    raft.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 1, index=1))
    drain(raft)
    raft.read_index(b"ctx")
    ready = raft.ready()
    beats = [m for m in ready.messages if m.type is MT.HEARTBEAT]
    assert ready.read_states == () and len(beats) == 2
    raft.advance(ready)
    raft.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n3", 1, index=beats[0].index - 1))
    assert raft.ready().read_states == ()
    raft.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n3", 1, index=beats[0].index))
    states = raft.ready().read_states
    assert [(s.index, s.context) for s in states] == [(1, b"ctx")]


def test_read_index_before_first_commit_of_term_is_deferred():
    raft = member(entries=[Entry(1, 1)], term=1)
    make_leader(raft)
    raft.read_index(b"early")
    ready = raft.ready()
    assert not any(m.type is MT.HEARTBEAT and m.index for m in ready.messages)
    raft.advance(ready)
    raft.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 2, index=2))
    beats = [m for m in raft.ready().messages if m.type is MT.HEARTBEAT]
    assert beats and beats[0].index > 0


def test_timeout_now_starts_election_immediately_without_pre_vote():
    raft = member("n2", term=1)
    raft.step(Message(MT.HEARTBEAT, "n2", "n1", 1))  # n1 leads term 1
    drain(raft)
    raft.step(Message(MT.TIMEOUT_NOW, "n2", "n1", 1))
    assert raft.role is Role.CANDIDATE and raft.current_term == 2
    votes = drain(raft)
    assert {m.type for m in votes} == {MT.REQUEST_VOTE}
    assert {m.context for m in votes} == {CAMPAIGN_TRANSFER}


def test_forwarded_proposal_is_appended_by_leader_only():
    leader = member()
    make_leader(leader)
    leader.step(Message(MT.PROPOSE, "n1", "n2", 0, entries=(Entry(0, 0, data=b"p"),)))
    assert leader.log.entries[-1].data == b"p" and leader.log.entries[-1].term == 1
    follower = member("n3")
    follower.step(Message(MT.PROPOSE, "n3", "n2", 0, entries=(Entry(0, 0, data=b"p"),)))
    assert follower.log.last_index() == 0 and drain(follower) == []


def test_snapshot_answer_claims_only_committed_prefix():
    """A follower that already committed past the snapshot keeps its log; its answer must
    not claim its uncommitted, possibly divergent suffix as matching (Raft 5.3)."""
    raft = member("n2", entries=[Entry(i, 1) for i in range(1, 9)], term=1)
    raft.step(Message(MT.APPEND_ENTRIES, "n2", "n1", 1, index=8, log_term=1, commit=5))
    drain(raft)
    meta = SnapshotMeta(4, 1, Membership(MEMBERS), snapshot_checksum(b"s"))
    raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n1", 1, snapshot_meta=meta, data=b"s",
                      done=True))
    (answer,) = drain(raft)
    assert answer.done and answer.index == 5 and raft.log.last_index() == 8


def test_termless_message_other_than_forwarded_request_is_ignored():
    raft = member("n2", entries=[Entry(1, 1), Entry(2, 1)], term=1)
    raft.step(Message(MT.HEARTBEAT, "n2", "n1", 0, commit=2))
    assert raft.log.committed == 0 and raft.leader_id is None and drain(raft) == []


def _transfer_ready_leader() -> Raft:
    """n1 leads term 1 with n2 and n3 holding its whole log."""
    leader = member()
    make_leader(leader)
    drain(leader)
    for peer in ("n2", "n3"):
        leader.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", peer, 1, index=1))
    drain(leader)
    return leader


def test_lost_timeout_now_is_sent_again_on_the_targets_heartbeat_response():
    """Thesis 3.10: the transfer target gets TimeoutNow once it is up to date; when that
    message is lost, the target's next heartbeat response brings another (instead of the
    transfer stalling, proposals refused, for an election timeout)."""
    leader = _transfer_ready_leader()
    leader.transfer_leadership("n2")
    first = [m for m in drain(leader) if m.type is MT.TIMEOUT_NOW]
    assert [m.to for m in first] == ["n2"]  # ... and lost on the way
    for _ in range(leader.config.heartbeat_ticks):
        leader.tick()
    beats = [m for m in drain(leader) if m.type is MT.HEARTBEAT]
    assert {m.to for m in beats} == {"n2", "n3"}
    # The other follower's answer brings nothing; the target's brings TimeoutNow again.
    leader.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n3", 1, index=beats[0].index))
    assert not [m for m in drain(leader) if m.type is MT.TIMEOUT_NOW]
    leader.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n2", 1, index=beats[0].index))
    again = [m for m in drain(leader) if m.type is MT.TIMEOUT_NOW]
    assert [(m.to, m.term) for m in again] == [("n2", 1)]
    # A repeated append response of the target (nothing new acknowledged) brings one too.
    leader.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 1, index=1))
    assert [m.to for m in drain(leader) if m.type is MT.TIMEOUT_NOW] == ["n2"]
    # The target receiving it campaigns at once, past pre-vote (thesis 3.10).
    target = member("n2", entries=[Entry(1, 1)], term=1)
    target.step(Message(MT.HEARTBEAT, "n2", "n1", 1, commit=1))
    target.step(again[0])
    assert target.role is Role.CANDIDATE and target.current_term == 2


def test_timeout_now_is_not_sent_again_once_the_transfer_ended():
    """The transfer ends after an election timeout (thesis 3.10): later heartbeat responses
    of the target bring no TimeoutNow, and a lagging target gets none before it caught up."""
    leader = _transfer_ready_leader()
    leader.propose(b"x")  # n2 now lags by one entry
    drain(leader)
    leader.transfer_leadership("n2")
    leader.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n2", 1, index=0))
    assert not [m for m in drain(leader) if m.type is MT.TIMEOUT_NOW]
    for _ in range(leader.config.election_ticks):
        leader.tick()
    drain(leader)
    assert leader.lead_transferee is None
    leader.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 1, index=2))
    leader.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n2", 1, index=0))
    assert not [m for m in drain(leader) if m.type is MT.TIMEOUT_NOW]


# ------------------------------------------------------------------ snapshot transfer checks

def _snapshot_chunks(raft: Raft, meta: SnapshotMeta, data: bytes, sender: str = "n1",
                     term: int = 2, size: int = 3) -> list[Message]:
    """Step ``data`` into ``raft`` as InstallSnapshot chunks of ``size``; return the answers."""
    answers: list[Message] = []
    for offset in range(0, len(data), size):
        chunk = data[offset:offset + size]
        raft.step(Message(MT.INSTALL_SNAPSHOT, raft.id, sender, term, snapshot_meta=meta,
                          offset=offset, data=chunk, done=offset + size >= len(data)))
        answers.extend(drain(raft))
    return answers


def _follower_with_state() -> Raft:
    raft = member("n2", entries=[Entry(1, 1), Entry(2, 1, data=b"x")], term=1)
    raft.step(Message(MT.APPEND_ENTRIES, "n2", "n1", 1, index=2, log_term=1, commit=1))
    drain(raft)
    return raft


def _untouched(raft: Raft) -> tuple[object, ...]:
    log = raft.log
    return (list(log.entries), log.committed, log.applied, log.snapshot, log.pending_snapshot,
            log.last_index(), raft.current_term)


def test_snapshot_whose_data_misses_its_checksum_is_dropped():
    raft = _follower_with_state()
    before = _untouched(raft)
    data = b"abcdefgh"
    meta = SnapshotMeta(10, 2, Membership(MEMBERS), snapshot_checksum(data) ^ 1)
    answers = _snapshot_chunks(raft, meta, data)
    assert not any(a.done for a in answers)  # never acknowledged
    assert raft.snapshots_rejected == 1
    assert raft.snapshot_receiving is None
    ready = raft.ready()
    assert ready.snapshot is None  # never handed out to be persisted
    assert _untouched(raft)[:-1] == before[:-1]


def test_validator_refusal_leaves_log_commit_and_state_and_the_member_keeps_running():
    seen: list[bytes] = []

    def refuse(data: bytes) -> bool:
        seen.append(data)
        return False

    raft = Raft(RaftConfig("n2", MEMBERS), random.Random(7),
                PersistedState(HardState(2, None, 0), None, [Entry(1, 1), Entry(2, 2)]),
                snapshot_validator=refuse)
    raft.step(Message(MT.APPEND_ENTRIES, "n2", "n1", 2, index=2, log_term=2, commit=1))
    drain(raft)
    before = _untouched(raft)
    data = b"garbage that does not restore"
    meta = SnapshotMeta(10, 2, Membership(MEMBERS), snapshot_checksum(data))
    answers = _snapshot_chunks(raft, meta, data, size=8)
    assert seen == [data]  # called once, on the whole snapshot
    assert not any(a.done for a in answers)
    assert raft.snapshots_rejected == 1
    assert raft.ready().snapshot is None
    assert _untouched(raft) == before
    # It keeps following its leader: the next append is taken and answered.
    raft.step(Message(MT.APPEND_ENTRIES, "n2", "n1", 2, index=2, log_term=2,
                      entries=(Entry(3, 2, data=b"y"),), commit=3))
    ready = raft.ready()
    assert [e.index for e in ready.entries] == [3]
    assert [(m.type, m.index, m.reject) for m in ready.messages] == [
        (MT.APPEND_ENTRIES_RESPONSE, 3, False)]
    raft.advance(ready)
    assert raft.log.committed == 3


def test_validator_acceptance_installs_the_snapshot():
    accepted: list[bytes] = []
    raft = Raft(RaftConfig("n2", MEMBERS), random.Random(7), None,
                snapshot_validator=lambda data: accepted.append(data) or True)
    data = b"abcdefgh"
    meta = SnapshotMeta(10, 2, Membership(MEMBERS), snapshot_checksum(data))
    raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n1", 2, snapshot_meta=meta, data=data,
                      done=True))
    ready = raft.ready()
    assert ready.snapshot == Snapshot(meta, data)
    assert ready.snapshot.data is accepted[0]  # the node keeps its scratch state by identity
    assert [m.done for m in ready.messages] == [True]


def test_receive_buffer_is_reset_on_a_term_change():
    """Chunks of an old leader never combine with a new leader's (a term change resets)."""
    raft = member("n2", term=2)
    data = b"abcdefgh"
    meta = SnapshotMeta(10, 2, Membership(MEMBERS), snapshot_checksum(data))
    raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n1", 2, snapshot_meta=meta, data=b"abc"))
    drain(raft)
    assert raft.snapshot_receiving is not None
    raft.step(Message(MT.HEARTBEAT, "n2", "n3", 3))
    assert raft.snapshot_receiving is None
    # The rest of the old transfer, in the new term from the new leader, is not appended to
    # anything: the follower asks for offset 0.
    raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n3", 3, snapshot_meta=meta, offset=3,
                      data=b"defgh", done=True))
    answers = drain(raft)
    assert [(a.index, a.done) for a in answers if a.type is MT.INSTALL_SNAPSHOT_RESPONSE] == [
        (0, False)]
    assert raft.log.last_index() == 0


def test_receive_buffer_is_reset_when_a_new_sender_sends_a_chunk():
    raft = member("n2", term=2)
    data = b"abcdefgh"
    meta = SnapshotMeta(10, 2, Membership(MEMBERS), snapshot_checksum(data))
    raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n1", 2, snapshot_meta=meta, data=b"abc"))
    drain(raft)
    # Another sender (same term: only a forged or confused one) continues at offset 3.
    raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n3", 2, snapshot_meta=meta, offset=3,
                      data=b"defgh", done=True))
    (answer,) = drain(raft)
    assert (answer.to, answer.index, answer.done) == ("n3", 0, False)
    assert raft.snapshot_receiving is None and raft.log.last_index() == 0
    # Its own transfer from offset 0 is taken.
    _snapshot_chunks(raft, meta, data, sender="n3")
    assert raft.log.last_index() == 10


# ------------------------------------------------------------------ buggy members
# A member with a valid key may still run a buggy or old version: what it sends must not
# crash, wedge or mislead another member beyond what Raft's crash-fault model allows.


def test_timeout_now_and_read_index_response_only_from_the_leader():
    """Thesis 3.10 and 6.4: only the leader of the term sends TimeoutNow and read points.
    From another member a TimeoutNow would depose the leader past pre-vote and the lease,
    and a read point could be stale."""
    raft = member("n2", entries=[Entry(1, 1)], term=1)
    raft.step(Message(MT.HEARTBEAT, "n2", "n1", 1, commit=1))
    drain(raft)
    raft.step(Message(MT.TIMEOUT_NOW, "n2", "n3", 1))
    raft.step(Message(MT.READ_INDEX_RESPONSE, "n2", "n3", 1, index=0, context=b"r"))
    ready = raft.ready()
    assert raft.role is Role.FOLLOWER and raft.current_term == 1 and ready.read_states == ()
    raft.advance(ready)
    raft.step(Message(MT.READ_INDEX_RESPONSE, "n2", "n1", 1, index=1, context=b"r"))
    assert [(s.index, s.context) for s in raft.ready().read_states] == [(1, b"r")]
    raft.step(Message(MT.TIMEOUT_NOW, "n2", "n1", 1))
    assert raft.role is Role.CANDIDATE and raft.current_term == 2


def test_messages_from_non_members_are_ignored():
    """Raft 5.2: a vote counts only from a member; the core drops anything else whoever
    delivers it (the node's transport authenticates members, the simulator does not)."""
    raft = member("n1", term=1)
    raft.campaign(False)
    drain(raft)
    raft.step(Message(MT.REQUEST_VOTE_RESPONSE, "n1", "x", raft.current_term))
    raft.step(Message(MT.REQUEST_VOTE_RESPONSE, "n1", "n1", raft.current_term))
    assert raft.role is Role.CANDIDATE
    raft.step(Message(MT.REQUEST_VOTE_RESPONSE, "n1", "n2", raft.current_term))
    assert raft.role is Role.LEADER


def test_a_term_no_election_reaches_is_dropped():
    """A buggy member's term near MAX_RAFT_INT, adopted and stored by everyone, would leave
    no room to campaign: the cluster would never elect a leader again. Terms above
    MAX_PEER_TERM are dropped; at it, the member still campaigns."""
    raft = member("n2", term=1)
    raft.step(Message(MT.HEARTBEAT, "n2", "n1", MAX_PEER_TERM + 1))
    assert raft.current_term == 1 and drain(raft) == []
    raft.step(Message(MT.HEARTBEAT, "n2", "n1", MAX_PEER_TERM))
    assert raft.current_term == MAX_PEER_TERM and raft.leader_id == "n1"
    drain(raft)
    raft.step(Message(MT.TIMEOUT_NOW, "n2", "n1", MAX_PEER_TERM))
    assert raft.role is Role.CANDIDATE and raft.current_term == MAX_PEER_TERM + 1


def test_leader_ignores_an_ack_beyond_its_log():
    """Figure 2: match_index never exceeds what the leader sent. An append (or snapshot)
    answer acknowledging more is dropped; replication to that peer goes on."""
    leader = member()
    make_leader(leader)  # term 1, no-op at 1
    drain(leader)
    leader.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 1, index=99))
    leader.step(Message(MT.INSTALL_SNAPSHOT_RESPONSE, "n1", "n2", 1, index=99, done=True))
    assert leader.status().progress["n2"].match_index == 0
    leader.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 1, index=1))  # the real ack
    leader.propose(b"x")
    appends = [m for m in drain(leader) if m.type is MT.APPEND_ENTRIES and m.to == "n2"]
    assert appends and appends[-1].entries[-1].index == 2
    leader.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", "n2", 1, index=2))
    assert leader.status().progress["n2"].match_index == 2 and leader.log.committed == 2


def test_a_read_ack_of_a_round_not_sent_confirms_nothing():
    """Thesis 6.4: a read waits for a quorum to acknowledge a heartbeat round sent after
    it. An echo of a round not sent yet (a buggy peer) counts only up to the round last
    sent, so it cannot stand in for that peer's answer to a later round."""
    five = ("n1", "n2", "n3", "n4", "n5")
    leader = Raft(RaftConfig("n1", five), random.Random(7), None)
    leader.campaign(False)
    drain(leader)
    for voter in ("n2", "n3"):
        leader.step(Message(MT.REQUEST_VOTE_RESPONSE, "n1", voter, leader.current_term))
    assert leader.role is Role.LEADER
    drain(leader)
    for peer in five[1:]:
        leader.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n1", peer, 1, index=1))
    drain(leader)
    leader.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n2", 1, index=5))  # no round 5 yet
    leader.read_index(b"r1")
    beats = [m for m in drain(leader) if m.type is MT.HEARTBEAT]
    seq = beats[0].index
    # One real answer (n3) and the leader make two of five: not yet a quorum.
    leader.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n3", 1, index=seq))
    assert leader.ready().read_states == ()
    leader.step(Message(MT.HEARTBEAT_RESPONSE, "n1", "n4", 1, index=seq))
    assert [s.context for s in leader.ready().read_states] == [b"r1"]


def test_forwarded_proposal_refused_by_the_validator_is_not_appended():
    """An entry no member can apply would, once committed, stop every member (a committed
    entry is never skipped, Raft 5.3 State Machine Safety): the leader appends a forwarded
    proposal only when the node's validator accepts it."""
    leader = Raft(RaftConfig("n1", MEMBERS), random.Random(7), None,
                  proposal_validator=lambda data: data.startswith(b"ok"))
    make_leader(leader)
    drain(leader)
    last = leader.log.last_index()
    leader.step(Message(MT.PROPOSE, "n1", "n2", 0, entries=(Entry(0, 0, data=b"garbage"),)))
    assert leader.log.last_index() == last and leader.proposals_rejected == 1
    leader.step(Message(MT.PROPOSE, "n1", "n2", 0, entries=(Entry(0, 0, data=b"ok 1"),)))
    assert leader.log.entries[-1].data == b"ok 1" and leader.proposals_rejected == 1


def test_validator_is_not_asked_about_a_snapshot_whose_data_is_not_used():
    """The node keeps the state it restored for the install; a snapshot that installs
    nothing (step 6 of figure 13, or all of it committed) must not leave one behind."""
    asked: list[bytes] = []
    raft = Raft(RaftConfig("n2", MEMBERS), random.Random(7),
                PersistedState(HardState(1, None, 0), None, [Entry(i, 1) for i in range(1, 9)]),
                snapshot_validator=lambda data: asked.append(data) or False)
    raft.step(Message(MT.APPEND_ENTRIES, "n2", "n1", 1, index=8, log_term=1, commit=5))
    drain(raft)
    for index in (4, 7):  # committed already; in the log, not yet committed
        data = b"s%d" % index
        raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n1", 1, data=data, done=True,
                          snapshot_meta=SnapshotMeta(index, 1, Membership(MEMBERS),
                                                     snapshot_checksum(data))))
        (answer,) = drain(raft)
        assert answer.done
    assert asked == [] and raft.snapshots_rejected == 0
    assert (raft.log.committed, raft.log.last_index()) == (7, 8)
