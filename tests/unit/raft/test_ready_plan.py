"""plan_ready: what may happen before a Ready is on disk (Raft figure 2, dissertation 10.2.1)."""

from __future__ import annotations

from dqueue.raft import (
    Entry,
    HardState,
    Membership,
    Message,
    MessageType,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
)
from dqueue.raft.ready_plan import plan_ready
from dqueue.raft.types import snapshot_checksum

APPEND = Message(MessageType.APPEND_ENTRIES, "n2", "n1", 3)
BEAT = Message(MessageType.HEARTBEAT, "n3", "n1", 3)
VOTE = Message(MessageType.REQUEST_VOTE_RESPONSE, "n2", "n1", 3)
ACK = Message(MessageType.APPEND_ENTRIES_RESPONSE, "n2", "n1", 3, index=5)
NOW = Message(MessageType.TIMEOUT_NOW, "n2", "n1", 3)
ENTRY = Entry(5, 3, data=b"x")


def test_leader_sends_appends_and_heartbeats_before_its_write_and_the_rest_after():
    """Dissertation 10.2.1: the leader writes in parallel with replicating."""
    ready = Ready(entries=(ENTRY,), messages=(APPEND, NOW, BEAT),
                  committed_entries=(Entry(4, 3),))
    plan = plan_ready(ready, Role.LEADER, 3, "n1")
    assert plan.early == (APPEND, BEAT) and plan.late == (NOW,)
    assert plan.apply_first and plan.needs_write and not plan.term_or_vote_changed


def test_a_new_term_or_vote_holds_every_message_until_written():
    """Figure 2: a term or vote must be stored before any message carrying it leaves."""
    ready = Ready(hard_state=HardState(4, "n1", 3), messages=(APPEND, BEAT),
                  committed_entries=(Entry(4, 3),))
    plan = plan_ready(ready, Role.LEADER, 3, "n1")
    assert plan.early == () and plan.late == (APPEND, BEAT)
    assert plan.needs_write and plan.term_or_vote_changed and not plan.apply_first


def test_a_follower_answers_votes_and_appends_only_after_its_write():
    ready = Ready(entries=(ENTRY,), messages=(ACK, VOTE), committed_entries=(Entry(4, 3),))
    for role in (Role.FOLLOWER, Role.CANDIDATE, Role.PRE_CANDIDATE):
        plan = plan_ready(ready, role, 3, None)
        assert plan.early == () and plan.late == (ACK, VOTE) and not plan.apply_first


def test_a_commit_index_alone_needs_no_write():
    """Figure 2 keeps commit_index volatile: it goes with the next write."""
    ready = Ready(hard_state=HardState(3, "n1", 9), committed_entries=(Entry(9, 3),))
    plan = plan_ready(ready, Role.LEADER, 3, "n1")
    assert not plan.needs_write and plan.apply_first
    assert not plan_ready(Ready(hard_state=HardState(3, None, 9)), Role.FOLLOWER, 3,
                          None).needs_write


def test_a_snapshot_is_written_before_anything_is_applied():
    meta = SnapshotMeta(9, 3, Membership(("n1", "n2", "n3")), snapshot_checksum(b""))
    snapshot = Snapshot(meta, b"")
    ready = Ready(snapshot=snapshot, committed_entries=(Entry(10, 3),), messages=(APPEND,))
    plan = plan_ready(ready, Role.LEADER, 3, "n1")
    assert plan.needs_write and not plan.apply_first and plan.early == (APPEND,)
