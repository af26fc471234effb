"""The Raft core through its public API, on the in-process harness network."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.raft import (
    CAMPAIGN_TRANSFER,
    MAX_RAFT_INT,
    Entry,
    EntryType,
    HardState,
    Membership,
    Message,
    MessageType,
    PersistedState,
    ProposalDropped,
    Raft,
    RaftConfig,
    Role,
    SnapshotMeta,
    message_from_plain,
    message_to_plain,
    snapshot_checksum,
)
from tests.depth import examples

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


def _repaired(term: int = 3, catch_up_term: int | None = 3) -> Raft:
    """n2 after a repair in ``term``: no log, catch-up index 20 (docs/raft.md, "Repair")."""
    state = PersistedState(HardState(term, "n1", 0), None, [], catch_up_index=20,
                           catch_up_term=catch_up_term)
    # Without check-quorum's lease every vote request gets an answer, a refusal included.
    config = RaftConfig("n2", ("n1", "n2", "n3"), check_quorum=False)
    return Raft(config, random.Random(3), state)


def _step_and_persist(raft: Raft, m: Message) -> None:
    raft.step(m)
    raft.advance(raft.ready())


def _grants_vote(raft: Raft) -> bool:
    raft.step(Message(MessageType.REQUEST_VOTE, "n2", "n3", term=raft.current_term + 1,
                      index=raft.log.last_index() + 5, log_term=raft.current_term + 1))
    return [m.reject for m in raft.ready().messages] == [False]


def test_repaired_member_votes_again_once_it_stores_a_committed_entry_of_a_later_term():
    """docs/raft.md "Repair": below the catch-up index, a committed entry of a term above
    the term at the repair proves that every committed entry the member acknowledged is in
    its log (Leader Completeness 5.4.3, Log Matching 5.3). Stored is not enough until it is
    seen committed, and seen committed is not enough until it is stored."""
    raft = _repaired()
    # A leader of term 5 sends entries of terms 2 and 5; only the term-2 one is committed.
    _step_and_persist(raft, Message(MessageType.APPEND_ENTRIES, "n2", "n1", term=5,
                                    entries=(Entry(1, 2), Entry(2, 5)), commit=1))
    assert raft.log.committed == 1 and raft.catch_up_index == 20
    # The next heartbeat carries commit 2 (the leader's commit, capped by our match point).
    raft.step(Message(MessageType.HEARTBEAT, "n2", "n1", term=5, commit=2))
    assert raft.log.committed == 2
    raft.advance(raft.ready())
    assert raft.catch_up_index == 0 and raft.log.last_index() < 20
    assert _grants_vote(raft)


def test_committed_entry_counts_only_once_stored():
    """An append that brings the entry and its commit in one message clears the catch-up
    index only at advance(), once the Ready holding the entry is persisted."""
    raft = _repaired()
    raft.step(Message(MessageType.APPEND_ENTRIES, "n2", "n1", term=4,
                      entries=(Entry(1, 4),), commit=1))
    ready = raft.ready()
    assert raft.log.committed == 1 and raft.catch_up_index == 20
    raft.advance(ready)
    assert raft.catch_up_index == 0


def test_committed_entry_of_the_repair_term_is_not_enough():
    """The leader of the repair term itself may commit entries above the one the member
    holds by counting the acknowledgements the member lost (docs/raft.md "Repair"): an
    entry of that term, committed, leaves the member without a vote (Raft 5.4.1)."""
    raft = _repaired()
    _step_and_persist(raft, Message(MessageType.APPEND_ENTRIES, "n2", "n1", term=3,
                                    entries=(Entry(1, 3), Entry(2, 3)), commit=2))
    assert raft.log.committed == 2 and raft.catch_up_index == 20
    assert not _grants_vote(raft)


def test_stored_entry_of_a_later_term_not_yet_seen_committed_is_not_enough():
    raft = _repaired()
    _step_and_persist(raft, Message(MessageType.APPEND_ENTRIES, "n2", "n1", term=5,
                                    entries=(Entry(1, 5),), commit=0))
    assert raft.catch_up_index == 20 and not _grants_vote(raft)


def test_unknown_repair_term_falls_back_to_the_stored_term():
    """A store repaired before the term was recorded: the core takes the stored term, at
    least the term at the repair (terms never decrease, Raft figure 2), so the rule is only
    stricter: a committed entry of term 4 does not count for a member now in term 4."""
    raft = _repaired(term=4, catch_up_term=None)
    assert raft.catch_up_term == 4
    _step_and_persist(raft, Message(MessageType.APPEND_ENTRIES, "n2", "n1", term=4,
                                    entries=(Entry(1, 4),), commit=1))
    assert raft.catch_up_index == 20
    _step_and_persist(raft, Message(MessageType.APPEND_ENTRIES, "n2", "n1", term=5,
                                    index=1, log_term=4, entries=(Entry(2, 5),), commit=2))
    assert raft.catch_up_index == 0


# ------------------------------------------------------------------ hostile peers

def _member(node_id: str = "n1", term: int = 0, entries: list[Entry] | None = None) -> Raft:
    state = PersistedState(HardState(term, None, 0), None, entries or [])
    return Raft(RaftConfig(node_id, ("n1", "n2", "n3")), random.Random(3), state)


def _drain(raft: Raft) -> list[Message]:
    ready = raft.ready()
    raft.advance(ready)
    return list(ready.messages)


def test_no_campaign_at_the_term_bound():
    """The term never moves above MAX_RAFT_INT, so nothing ever overflows (only a forged
    message can bring a member there)."""
    for pre_vote in (True, False):
        raft = _member(term=MAX_RAFT_INT)
        raft.campaign(pre_vote)
        assert raft.current_term == MAX_RAFT_INT and raft.role is Role.FOLLOWER
        assert _drain(raft) == []
    raft = _member(term=MAX_RAFT_INT)
    for _ in range(100):
        raft.tick()
    assert raft.current_term == MAX_RAFT_INT and _drain(raft) == []
    raft.step(Message(MessageType.TIMEOUT_NOW, "n1", "n2", MAX_RAFT_INT))
    assert raft.current_term == MAX_RAFT_INT and raft.role is Role.FOLLOWER


def test_campaign_just_below_the_bound_reaches_it_and_no_further():
    raft = _member(term=MAX_RAFT_INT - 1)
    raft.campaign(False)
    assert raft.current_term == MAX_RAFT_INT and raft.role is Role.CANDIDATE
    raft.campaign(False)
    assert raft.current_term == MAX_RAFT_INT


def test_a_term_beyond_the_bound_is_ignored():
    raft = _member(term=3)
    raft.step(Message(MessageType.HEARTBEAT, "n1", "n2", MAX_RAFT_INT + 1))
    assert raft.current_term == 3 and raft.leader_id is None and _drain(raft) == []


@st.composite
def _hostile_message(draw: st.DrawFn, to: str) -> Message:
    small = st.one_of(st.integers(0, 12), st.just(MAX_RAFT_INT))
    kind = draw(st.sampled_from(list(MessageType)))
    term = draw(st.one_of(st.integers(0, 6), st.just(MAX_RAFT_INT)))
    index, log_term = draw(small), draw(st.integers(0, max(0, min(term, 6))))
    entries: tuple[Entry, ...] = ()
    if kind is MessageType.APPEND_ENTRIES and index < 20:
        count = draw(st.integers(0, 4))
        terms = sorted(draw(st.lists(st.integers(log_term, max(log_term, term)),
                                     min_size=count, max_size=count)))
        entries = tuple(Entry(index + 1 + i, t, EntryType.NORMAL, b"d")
                        for i, t in enumerate(terms))
    elif kind is MessageType.PROPOSE and draw(st.booleans()):
        entries = (Entry(0, 0, EntryType.NORMAL, b"p"),)
    data = draw(st.binary(max_size=6))
    meta = None
    if draw(st.booleans()):
        members = tuple(draw(st.lists(st.sampled_from(["n1", "n2", "n3", "x"]), min_size=1,
                                      max_size=4, unique=True)))
        checksum = snapshot_checksum(data) if draw(st.booleans()) else draw(
            st.integers(0, (1 << 32) - 1))
        meta = SnapshotMeta(draw(small), draw(small), Membership(members), checksum)
    return Message(
        kind, to, draw(st.sampled_from(["n1", "n2", "n3", "x"])), term, log_term, index,
        entries, draw(small), draw(st.booleans()), draw(small),
        draw(st.sampled_from([b"", CAMPAIGN_TRANSFER, b"ctx"])), meta, draw(small), data,
        draw(st.booleans()),
    )


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[str, list[Message]]:
    role = draw(st.sampled_from(["follower", "candidate", "leader"]))
    return role, draw(st.lists(_hostile_message("n2"), max_size=12))


@settings(max_examples=examples(300), deadline=None)
@given(_scenario())
def test_any_message_the_codec_admits_is_stepped_without_raising(scenario):
    """Whatever a peer sends that passes message_from_plain, the core takes it without an
    exception, and its term stays within the bound (its invariants hold)."""
    role, messages = scenario
    raft = _member("n2", term=2, entries=[Entry(1, 1), Entry(2, 2), Entry(3, 2)])
    if role != "follower":
        raft.campaign(False)
        _drain(raft)
        if role == "leader":
            raft.step(Message(MessageType.REQUEST_VOTE_RESPONSE, "n2", "n1", raft.current_term))
            _drain(raft)
    for msg in messages:
        if message_from_plain(message_to_plain(msg)) != msg:
            continue
        raft.step(msg)
        _drain(raft)
        raft.tick()
        _drain(raft)
        assert raft.current_term <= MAX_RAFT_INT
        assert raft.log.applied <= raft.log.committed <= raft.log.last_index()


def _three_with_leader() -> Net:
    net = Net(3)
    net.elect("n1")
    net.settle()
    return net


def test_a_lost_connection_to_the_leader_ends_its_lease_and_hastens_the_election():
    """Thesis 4.2.3 and Raft 5.2: a follower that saw its leader's connection close stops
    believing it alive and times out within one base election timeout (its random part
    still spreads the followers), not a whole randomized timeout after the last heartbeat."""
    net = _three_with_leader()
    n2 = net.nodes["n2"]
    assert n2.leader_id == "n1"
    net.isolate("n1")  # the leader's process died: nothing more arrives from it
    n2.peer_lost("n3")  # another peer: nothing changes
    assert n2.leader_id == "n1"
    n2.peer_lost("n1")
    assert n2.leader_id is None
    assert n2.randomized_election_ticks > n2.config.election_ticks  # else nothing to hasten
    sent = len(net.sent)
    for _ in range(n2.config.election_ticks):
        net.tick("n2")
    assert any(m.sender == "n2" and m.type is MessageType.PRE_VOTE for m in net.sent[sent:])
    for _ in range(4 * n2.config.election_ticks):
        if net.nodes["n2"].role is Role.LEADER or net.nodes["n3"].role is Role.LEADER:
            break
        net.tick("n2")
        net.tick("n3")
    assert net.nodes["n2"].role is Role.LEADER or net.nodes["n3"].role is Role.LEADER


def test_a_follower_that_lost_only_its_own_connection_disrupts_nothing():
    """Pre-vote (thesis 9.6) and the lease of the others (4.2.3): n2 campaigns early, but n3
    still hears n1 and refuses; n1 stays leader in its term, and n2 follows it again."""
    net = _three_with_leader()
    leader = net.nodes["n1"]
    term = leader.current_term
    net.nodes["n2"].peer_lost("n1")
    for _ in range(3 * net.nodes["n2"].config.election_ticks):
        net.tick()
    assert leader.role is Role.LEADER and leader.current_term == term
    assert net.nodes["n2"].leader_id == "n1" and net.nodes["n3"].current_term == term


def test_a_lost_peer_is_ignored_by_a_leader_and_a_candidate():
    net = _three_with_leader()
    leader = net.nodes["n1"]
    leader.peer_lost("n2")
    assert leader.role is Role.LEADER and leader.leader_id == "n1"
