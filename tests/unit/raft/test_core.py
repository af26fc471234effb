"""The Raft core through its public API, on the in-process harness network."""

from __future__ import annotations

import random

import pytest

from dqueue.raft import (
    EntryType,
    HardState,
    Message,
    MessageType,
    PersistedState,
    ProposalDropped,
    Raft,
    RaftConfig,
    Role,
)

from .harness import Net


def test_single_member_elects_itself_and_commits_after_persisting():
    net = Net(1)
    net.elect("n1")
    node = net.nodes["n1"]
    node.propose(b"x")
    ready = node.ready()
    # The entry is handed out to persist but not committed before advance (Raft 5.3).
    assert [e.data for e in ready.entries] == [b"x"]
    assert ready.committed_entries == ()
    node.advance(ready)
    ready = node.ready()
    assert [e.data for e in ready.committed_entries] == [b"x"]
    assert ready.hard_state is not None and ready.hard_state.commit == 2


def test_three_members_elect_one_leader_and_replicate():
    net = Net(3)
    net.elect("n1")
    assert net.leader() == "n1"
    assert all(net.nodes[i].leader_id == "n1" for i in net.ids)
    net.nodes["n1"].propose(b"a")
    net.nodes["n1"].propose(b"b")
    net.settle()
    net.tick("n1", 2)  # a heartbeat carries the commit index to followers
    for node_id in net.ids:
        assert net.values(node_id) == [b"a", b"b"]


def test_new_leader_appends_noop_of_its_term():
    """Raft section 8: a new leader commits a no-op to learn the commit index."""
    net = Net(3)
    net.elect("n2")
    node = net.nodes["n2"]
    last = node.log.entries[-1]
    assert last.type is EntryType.NOOP and last.term == node.current_term
    assert node.log.committed == last.index


def test_batching_sends_one_append_per_peer_for_many_proposals():
    net = Net(3)
    net.elect("n1")
    net.sent.clear()
    for value in range(20):
        net.nodes["n1"].propose(str(value).encode())
    ready = net.nodes["n1"].ready()
    appends = [m for m in ready.messages if m.type is MessageType.APPEND_ENTRIES]
    assert sorted(m.to for m in appends) == ["n2", "n3"]
    assert all(len(m.entries) == 20 for m in appends)


def test_follower_forwards_proposal_to_leader():
    net = Net(3)
    net.elect("n1")
    net.nodes["n3"].propose(b"via-follower")
    net.settle()
    net.tick("n1", 2)
    assert net.values("n2") == [b"via-follower"]


def test_proposal_without_leader_raises_with_hint():
    node = Raft(RaftConfig("n1", ("n1", "n2", "n3")), random.Random(1))
    with pytest.raises(ProposalDropped) as info:
        node.propose(b"x")
    assert info.value.leader_id is None


def test_vote_and_term_persisted_before_vote_response():
    """Raft figure 2: current_term and voted_for are on stable storage before responding."""
    node = Raft(RaftConfig("n2", ("n1", "n2", "n3"), pre_vote=False), random.Random(1))
    node.step(Message(MessageType.REQUEST_VOTE, "n2", "n1", term=5, index=0, log_term=0))
    ready = node.ready()
    assert ready.hard_state == HardState(5, "n1", 0)
    grant = [m for m in ready.messages if m.type is MessageType.REQUEST_VOTE_RESPONSE]
    assert len(grant) == 1 and not grant[0].reject


def test_vote_rejected_for_candidate_with_stale_log():
    """Raft section 5.4.1: no vote for a log less up to date than ours."""
    from dqueue.raft import Entry
    persisted = PersistedState(HardState(2, None, 0), None,
                               [Entry(1, 1), Entry(2, 2)])
    node = Raft(RaftConfig("n2", ("n1", "n2", "n3"), pre_vote=False), random.Random(1),
                persisted)
    node.step(Message(MessageType.REQUEST_VOTE, "n2", "n1", term=3, index=5, log_term=1))
    ready = node.ready()
    assert [m.reject for m in ready.messages] == [True]
    assert node.voted_for is None


def test_one_vote_per_term():
    """Raft section 5.2: at most one vote per term, first come first served."""
    node = Raft(RaftConfig("n3", ("n1", "n2", "n3"), pre_vote=False), random.Random(1))
    node.step(Message(MessageType.REQUEST_VOTE, "n3", "n1", term=2))
    node.step(Message(MessageType.REQUEST_VOTE, "n3", "n2", term=2))
    ready = node.ready()
    assert [(m.to, m.reject) for m in ready.messages] == [("n1", False), ("n2", True)]


def test_restart_keeps_term_vote_and_log():
    net = Net(3)
    net.elect("n1")
    net.nodes["n1"].propose(b"a")
    net.settle()
    before = net.nodes["n2"].hard_state()
    net.restart("n2")
    after = net.nodes["n2"]
    assert (after.current_term, after.voted_for) == (before.term, before.vote)
    assert after.log.last_index() == net.nodes["n1"].log.last_index()
    assert after.role is Role.FOLLOWER


def test_status_reports_role_progress_and_indexes():
    net = Net(3)
    net.elect("n1")
    net.nodes["n1"].propose(b"a")
    net.settle()
    status = net.nodes["n1"].status()
    assert (status.role, status.leader_id, status.last_index) == (Role.LEADER, "n1", 2)
    assert set(status.progress) == {"n2", "n3"}
    assert all(p.match_index == 2 for p in status.progress.values())
    follower = net.nodes["n2"].status()
    assert follower.role is Role.FOLLOWER and follower.progress == {}


def test_repaired_member_neither_votes_nor_campaigns_until_its_log_is_back():
    """After a repair wiped its log (catch_up_index), a member's vote could elect a leader
    lacking an entry it had acknowledged: no vote, pre-vote or campaign until its stored log
    reaches the old last index again; then it votes as usual."""
    net = Net(3, pre_vote=True)
    net.elect("n1")
    for n in range(5):
        net.nodes["n1"].propose(b"v%d" % n)
    net.settle()
    old_last = net.nodes["n2"].log.last_index()
    term_vote = (net.nodes["n2"].current_term, net.nodes["n2"].voted_for)
    net.disks["n2"].wipe()
    net.restart("n2")
    repaired = net.nodes["n2"]
    assert repaired.log.last_index() == 0 and repaired.catch_up_index == old_last
    assert repaired.status().catch_up_index == old_last
    assert (repaired.current_term, repaired.voted_for) == term_vote  # kept by the repair
    term = repaired.current_term
    for kind in (MessageType.PRE_VOTE, MessageType.REQUEST_VOTE):
        repaired.step(Message(kind, "n2", "n3", term=term + 1, index=old_last + 9,
                              log_term=term))
    ready = repaired.ready()
    assert [m.reject for m in ready.messages] == [True, True]
    assert repaired.voted_for is None
    repaired.advance(ready)
    # Its own election timeout and a TimeoutNow do not make it campaign either.
    for _ in range(50):
        repaired.tick()
    repaired.step(Message(MessageType.TIMEOUT_NOW, "n2", "n1", term=repaired.current_term))
    assert repaired.role is Role.FOLLOWER
    assert not [m for m in repaired.ready().messages
                if m.type in (MessageType.PRE_VOTE, MessageType.REQUEST_VOTE)]
    # The leader refills its log; once stored up to the old last index it votes again.
    net.restart("n2")
    net.tick("n1", count=net.nodes["n1"].config.heartbeat_ticks)
    net.settle()
    back = net.nodes["n2"]
    assert back.log.last_index() >= old_last and back.catch_up_index == 0
    # A restart that finds the old marker on disk (the harness never clears it) and the log
    # back clears it at its first advance; then a candidate gets its vote.
    assert net.disks["n2"].state.catch_up_index == old_last
    net.restart("n2")
    back = net.nodes["n2"]
    assert back.catch_up_index == old_last
    back.advance(back.ready())
    assert back.catch_up_index == 0
    back.step(Message(MessageType.REQUEST_VOTE, "n2", "n3", term=back.current_term + 1,
                      index=back.log.last_index(), log_term=back.log.last_term()))
    assert [m.reject for m in back.ready().messages] == [False]
