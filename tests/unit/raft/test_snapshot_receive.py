"""InstallSnapshot receive bounds (Raft figure 13): what no leader can send is refused, counted
by reason, and leaves nothing behind."""

from __future__ import annotations

import random

import pytest

from dqueue.raft import (
    MAX_RAFT_INT,
    Entry,
    HardState,
    Membership,
    Message,
    MessageType,
    PersistedState,
    Raft,
    RaftConfig,
    SnapshotMeta,
    SnapshotRefusal,
    snapshot_checksum,
)
from dqueue.raft.types import DEFAULT_MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_INDEX

MT = MessageType
MEMBERS = ("n1", "n2", "n3")
TERM = 2


def follower(**options: object) -> Raft:
    """n2, following n1 in term 2, with two entries of which one is committed."""
    state = PersistedState(HardState(TERM, None, 0), None, [Entry(1, 1), Entry(2, 2)])
    raft = Raft(RaftConfig("n2", MEMBERS, **options), random.Random(7), state)  # type: ignore[arg-type]
    raft.step(Message(MT.APPEND_ENTRIES, "n2", "n1", TERM, index=2, log_term=2, commit=1))
    drain(raft)
    return raft


def drain(raft: Raft) -> list[Message]:
    ready = raft.ready()
    raft.advance(ready)
    return list(ready.messages)


def chunk(raft: Raft, meta: SnapshotMeta, data: bytes, offset: int, done: bool,
          term: int = TERM) -> list[Message]:
    raft.step(Message(MT.INSTALL_SNAPSHOT, "n2", "n1", term, snapshot_meta=meta, offset=offset,
                      data=data, done=done))
    return drain(raft)


def send_whole(raft: Raft, meta: SnapshotMeta, data: bytes, size: int) -> list[Message]:
    answers: list[Message] = []
    for offset in range(0, len(data), size):
        answers += chunk(raft, meta, data[offset:offset + size], offset,
                         offset + size >= len(data))
    return answers


def state_of(raft: Raft) -> tuple[object, ...]:
    log = raft.log
    return (list(log.entries), log.committed, log.applied, log.snapshot, log.pending_snapshot,
            log.last_index(), raft.current_term, raft.voted_for)


def refusals(raft: Raft) -> dict[str, int]:
    """The reasons counted so far (every reason is listed, at 0 until it happens)."""
    by_reason = raft.snapshots_rejected_by_reason
    assert set(by_reason) == {r.value for r in SnapshotRefusal}
    return {reason: n for reason, n in by_reason.items() if n}


def meta_for(data: bytes, index: int = 10, term: int = TERM) -> SnapshotMeta:
    return SnapshotMeta(index, term, Membership(MEMBERS), snapshot_checksum(data))


def test_default_bound_is_one_gib_and_must_hold_a_chunk():
    assert RaftConfig("n1", MEMBERS).max_snapshot_bytes == DEFAULT_MAX_SNAPSHOT_BYTES == 1 << 30
    with pytest.raises(ValueError, match="max_snapshot_bytes"):
        RaftConfig("n1", MEMBERS, snapshot_chunk_bytes=1024, max_snapshot_bytes=1023)


def test_a_snapshot_at_the_bound_is_installed():
    raft = follower(snapshot_chunk_bytes=4, max_snapshot_bytes=12)
    data = b"twelve bytes"
    answers = send_whole(raft, meta_for(data), data, 4)
    assert answers[-1].done and answers[-1].index == 10
    assert raft.log.snapshot_index == 10 and raft.snapshots_rejected == 0


def test_chunks_past_the_bound_are_refused_and_the_buffer_dropped():
    raft = follower(snapshot_chunk_bytes=4, max_snapshot_bytes=12)
    before = state_of(raft)
    data = b"thirteen byte"
    meta = meta_for(data)
    answers = send_whole(raft, meta, data, 4)
    # Three chunks taken and answered with the next offset; the fourth is refused unanswered.
    assert [(a.index, a.done) for a in answers] == [(4, False), (8, False), (12, False)]
    assert raft.snapshot_receiving is None
    assert raft.snapshots_rejected == 1
    assert refusals(raft) == {SnapshotRefusal.TOO_LARGE.value: 1}
    assert raft.ready().snapshot is None
    assert state_of(raft) == before
    # The buffer is gone: a chunk at the old offset is a transfer never started.
    answers = chunk(raft, meta, b"t", 12, True)
    assert [(a.index, a.done) for a in answers] == [(0, False)]
    assert raft.snapshot_receiving is None


def test_one_chunk_bigger_than_the_bound_never_enters_the_buffer():
    raft = follower(snapshot_chunk_bytes=4, max_snapshot_bytes=8)
    data = b"x" * 9
    assert chunk(raft, meta_for(data), data, 0, True) == []
    assert raft.snapshot_receiving is None
    assert refusals(raft) == {"too_large": 1}


def test_after_a_refusal_a_snapshot_within_the_bound_is_still_taken():
    raft = follower(snapshot_chunk_bytes=4, max_snapshot_bytes=8)
    big = b"y" * 12
    send_whole(raft, meta_for(big, index=10), big, 4)
    small = b"z" * 8
    answers = send_whole(raft, meta_for(small, index=11), small, 4)
    assert answers[-1].done and raft.log.snapshot_index == 11
    assert raft.snapshots_rejected == 1


def test_a_meta_term_above_the_message_term_is_refused():
    """The last included term is an entry's term in the leader's log, never above the
    leader's current term (Raft 5.3); installed, it would make this log look more up to date
    than it is (Raft 5.4.1)."""
    raft = follower()
    before = state_of(raft)
    data = b"abcd"
    answers = chunk(raft, meta_for(data, term=TERM + 1), data, 0, True)
    assert answers == [] and raft.snapshot_receiving is None
    assert refusals(raft) == {"term_above_message": 1}
    assert raft.ready().snapshot is None and state_of(raft) == before


def test_a_meta_term_equal_to_the_message_term_is_taken():
    raft = follower()
    data = b"abcd"
    answers = chunk(raft, meta_for(data, term=TERM), data, 0, True)
    assert answers[-1].done and raft.snapshots_rejected == 0


@pytest.mark.parametrize("index", [MAX_SNAPSHOT_INDEX + 1, MAX_RAFT_INT - 1, MAX_RAFT_INT])
def test_an_index_near_the_codec_limit_is_refused(index):
    raft = follower()
    before = state_of(raft)
    data = b"abcd"
    assert chunk(raft, meta_for(data, index=index), data, 0, True) == []
    assert refusals(raft) == {"index_too_high": 1}
    assert raft.ready().snapshot is None and state_of(raft) == before


def test_the_highest_allowed_index_is_taken():
    raft = follower()
    data = b"abcd"
    answers = chunk(raft, meta_for(data, index=MAX_SNAPSHOT_INDEX), data, 0, True)
    assert answers[-1].done and raft.log.snapshot_index == MAX_SNAPSHOT_INDEX


def test_a_bad_meta_in_the_middle_of_a_transfer_drops_the_transfer():
    raft = follower()
    data = b"abcdefgh"
    meta = meta_for(data)
    assert [a.index for a in chunk(raft, meta, data[:4], 0, False)] == [4]
    bad = SnapshotMeta(meta.index, TERM + 1, Membership(MEMBERS), meta.checksum)
    assert chunk(raft, bad, data[4:], 4, True) == []
    assert raft.snapshot_receiving is None
    # The good transfer restarts from 0 (the leader's heartbeat resends a chunk).
    assert [a.index for a in chunk(raft, meta, data[4:], 4, True)] == [0]


def test_every_refusal_is_counted_by_reason_and_in_total():
    def refuse(data: bytes) -> bool:
        return False

    state = PersistedState(HardState(TERM, None, 0), None, [Entry(1, 1), Entry(2, 2)])
    raft = Raft(RaftConfig("n2", MEMBERS, snapshot_chunk_bytes=4, max_snapshot_bytes=8),
                random.Random(7), state, snapshot_validator=refuse)
    data = b"abcd"
    bad = SnapshotMeta(10, TERM, Membership(MEMBERS), snapshot_checksum(data) ^ 1)
    chunk(raft, bad, data, 0, True)
    chunk(raft, meta_for(data), data, 0, True)  # the validator refuses it
    chunk(raft, meta_for(b"x" * 9), b"x" * 9, 0, True)
    chunk(raft, meta_for(data, term=TERM + 1), data, 0, True)
    chunk(raft, meta_for(data, index=MAX_RAFT_INT), data, 0, True)
    assert refusals(raft) == {
        "checksum": 1, "invalid": 1, "too_large": 1, "term_above_message": 1,
        "index_too_high": 1}
    assert raft.snapshots_rejected == 5 == sum(raft.snapshots_rejected_by_reason.values())
