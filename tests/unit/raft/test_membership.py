"""Membership changes in the pure core: single-server changes with learners (thesis 4.1).

Each test names the dissertation section (Ongaro, "Consensus: Bridging Theory and Practice",
chapter 4) whose rule it checks.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from dqueue.raft import (
    ConfChange,
    ConfChangeKind,
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
    apply_conf_change,
    decode_conf_change,
    encode_conf_change,
    message_from_plain,
    message_to_plain,
    reconfig,
)
from dqueue.raft.membership import ConfigHistory, decode_conf_entry, encode_conf_entry
from dqueue.sim import SimDisk
from tests.unit.raft.harness import Net

K = ConfChangeKind
MT = MessageType
THREE = Membership(("n1", "n2", "n3"))


class GrowingNet(Net):
    """A Net whose members can be added at runtime (started to join: no configuration)."""

    def join(self, node_id: str) -> None:
        self.ids = (*self.ids, node_id)
        self.disks[node_id] = SimDisk()
        self.applied[node_id] = []
        self.read_states[node_id] = []
        config = RaftConfig(node_id, (), **self.config)  # type: ignore[arg-type]
        self.nodes[node_id] = Raft(config, random.Random(f"{self.seed}-{node_id}"))

    def restart(self, node_id: str) -> None:
        config = self.nodes[node_id].config
        self.nodes[node_id] = Raft(config, random.Random(f"{self.seed}-{node_id}-r"),
                                   self.disks[node_id].state)
        self.applied[node_id] = []

    def propose_conf(self, leader: str, kind: ConfChangeKind, node_id: str) -> None:
        change = ConfChange(kind, node_id, b"ctx-" + node_id.encode())
        self.nodes[leader].propose_conf_change(change)
        self.settle()


def three_with_leader() -> GrowingNet:
    net = GrowingNet(3)
    net.elect("n1")
    net.settle()
    return net


def committed_with(net: Net, leader: str, value: bytes) -> bool:
    net.nodes[leader].propose(value)
    net.settle()
    return value in net.values(leader)


# ------------------------------------------------------------------ values and codecs


def test_conf_change_and_conf_entry_round_trip():
    change = ConfChange(K.ADD_LEARNER, "n4", b"\x00addr")
    assert decode_conf_change(encode_conf_change(change)) == change
    after = apply_conf_change(THREE, change)
    assert after == Membership(("n1", "n2", "n3"), ("n4",), (("n4", b"\x00addr"),))
    assert decode_conf_entry(encode_conf_entry(change, after)) == (change, after)


def test_malformed_conf_data_raises_value_error_only():
    good = encode_conf_entry(ConfChange(K.ADD_LEARNER, "n4"),
                             apply_conf_change(THREE, ConfChange(K.ADD_LEARNER, "n4")))
    rng = random.Random(3)
    for cut in range(len(good)):
        with pytest.raises(ValueError):
            decode_conf_entry(good[:cut])
    with pytest.raises(ValueError):
        decode_conf_entry(good + b"\x00")
    for _ in range(300):
        data = bytearray(good)
        data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(ValueError):
            decode_conf_entry(bytes(data))
    # An entry whose configuration contradicts its change (REMOVE, yet still a member).
    with pytest.raises(ValueError):
        decode_conf_entry(encode_conf_entry(ConfChange(K.REMOVE, "n3"), THREE))


def test_invalid_changes_are_refused():
    """Thesis 4.1: one server added or removed per change, a learner promoted (4.2.1)."""
    with pytest.raises(ValueError):
        apply_conf_change(THREE, ConfChange(K.ADD_LEARNER, "n2"))
    with pytest.raises(ValueError):
        apply_conf_change(THREE, ConfChange(K.PROMOTE, "n2"))
    with pytest.raises(ValueError):
        apply_conf_change(THREE, ConfChange(K.REMOVE, "n9"))
    with pytest.raises(ValueError):
        apply_conf_change(Membership(("n1",)), ConfChange(K.REMOVE, "n1"))
    with pytest.raises(ValueError):
        apply_conf_change(THREE, ConfChange(K.ADD_LEARNER, ""))
    with pytest.raises(ValueError):
        apply_conf_change(THREE, ConfChange(K.ADD_LEARNER, "n4", b"x" * 5000))


def test_codec_checks_conf_change_entries_and_carries_learners_in_snapshot_meta():
    net = three_with_leader()
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    entry = net.nodes["n1"].log.entries[-1]
    assert entry.type is EntryType.CONF_CHANGE
    msg = Message(MT.APPEND_ENTRIES, "n2", "n1", entry.term, index=entry.index - 1,
                  log_term=entry.term, entries=(entry,))
    assert message_from_plain(message_to_plain(msg)) == msg
    plain = message_to_plain(msg)
    plain[6] = [[entry.index, entry.term, int(EntryType.CONF_CHANGE), b"\x01garbage"]]
    with pytest.raises(ValueError, match="membership change"):
        message_from_plain(plain)


# ------------------------------------------------------------------ proposing


def test_only_a_leader_with_a_committed_entry_of_its_term_proposes_one_change_at_a_time():
    """Thesis 4.1 (the fix to single-server changes): a leader may not change the
    configuration until it committed an entry of its term, and one change is in flight."""
    net = GrowingNet(3)
    net.join("n4")
    net.join("n5")
    with pytest.raises(ProposalDropped):
        net.nodes["n2"].propose_conf_change(ConfChange(K.ADD_LEARNER, "n4"))
    n1 = net.nodes["n1"]
    n1.campaign(False)
    net.process_ready("n1")
    net.inbox.clear()
    n1.step(Message(MT.REQUEST_VOTE_RESPONSE, "n1", "n2", n1.current_term))
    assert n1.role is Role.LEADER  # its NOOP is appended, not committed
    with pytest.raises(ProposalDropped):
        n1.propose_conf_change(ConfChange(K.ADD_LEARNER, "n4"))
    net.settle()
    net.tick("n1", 2)
    assert n1.log.term(n1.log.committed) == n1.current_term
    net.isolate("n1")
    n1.propose_conf_change(ConfChange(K.ADD_LEARNER, "n4"))
    with pytest.raises(ProposalDropped):
        n1.propose_conf_change(ConfChange(K.ADD_LEARNER, "n5"))
    net.heal()
    net.tick("n1", 2)
    assert n1.log.committed == n1.log.last_index()
    with pytest.raises(ValueError):
        n1.propose_conf_change(ConfChange(K.ADD_LEARNER, "n4"))  # a learner already
    n1.propose_conf_change(ConfChange(K.ADD_LEARNER, "n5"))
    assert n1.membership.learners == ("n4", "n5")


def test_a_forwarded_conf_change_is_dropped_by_the_leader():
    """Thesis 4.1: every change goes through the leader's checks; a PROPOSE carrying a
    CONF_CHANGE entry would skip them."""
    net = three_with_leader()
    data = encode_conf_entry(ConfChange(K.ADD_LEARNER, "n4"),
                             apply_conf_change(THREE, ConfChange(K.ADD_LEARNER, "n4")))
    before = net.nodes["n1"].log.last_index()
    net.nodes["n1"].step(Message(MT.PROPOSE, "n1", "n2", 0,
                                 entries=(Entry(0, 0, EntryType.CONF_CHANGE, data),)))
    assert net.nodes["n1"].log.last_index() == before
    assert net.nodes["n1"].membership == THREE


# ------------------------------------------------------------------ learners


def test_a_joining_learner_receives_the_log_and_never_campaigns():
    """Thesis 4.2.1 (catching up new servers): a learner gets the log without a vote; a member
    started with no configuration waits for the leader (4.1)."""
    net = three_with_leader()
    assert committed_with(net, "n1", b"before")
    net.join("n4")
    n4 = net.nodes["n4"]
    assert n4.membership.voters == () and not n4.status().removed
    net.tick("n4", 100)  # never campaigns without a configuration
    assert n4.role is Role.FOLLOWER and n4.current_term == 0
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    assert committed_with(net, "n1", b"after")
    assert net.values("n4") == [b"before", b"after"]
    assert n4.membership.learners == ("n4",)
    assert n4.membership.context_of("n4") == b"ctx-n4"
    net.tick("n4", 100)  # a learner never campaigns
    assert n4.role is Role.FOLLOWER
    assert net.nodes["n1"].status().progress["n4"].match_index == net.nodes["n1"].log.last_index()


def test_a_learner_never_counts_toward_commit_or_read_quorum():
    """Thesis 4.2.1: a learner is not counted in majorities (commit, ReadIndex 6.4)."""
    net = three_with_leader()
    net.join("n4")
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    net.cut |= {(a, b) for a in ("n2", "n3") for b in net.ids if a != b}
    net.cut |= {(b, a) for a in ("n2", "n3") for b in net.ids if a != b}
    leader = net.nodes["n1"]
    commit = leader.log.committed
    leader.propose(b"x")
    net.settle()
    # n1 and n4 store it: two of four members, but only one of three voters.
    assert net.nodes["n4"].log.last_index() == leader.log.last_index()
    assert leader.log.committed == commit
    leader.read_index(b"r")
    net.settle()
    assert net.read_states["n1"] == []
    net.heal()
    net.tick("n1", 3)
    assert leader.log.committed == leader.log.last_index()


def test_a_learner_never_votes_and_transfer_to_it_is_refused():
    """Thesis 4.2.1: only voters' answers count; a learner may not be made leader (3.10)."""
    net = three_with_leader()
    net.join("n4")
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    leader = net.nodes["n1"]
    leader.transfer_leadership("n4")
    assert leader.lead_transferee is None
    n2 = net.nodes["n2"]
    net.isolate("n1")
    n2.campaign(False)
    net.process_ready("n2")
    net.inbox.clear()
    n2.step(Message(MT.REQUEST_VOTE_RESPONSE, "n2", "n4", n2.current_term))
    assert n2.role is Role.CANDIDATE  # the learner's vote counted for nothing


# ------------------------------------------------------------------ appended, not committed


def test_a_configuration_takes_effect_when_appended_and_reverts_when_truncated():
    """Thesis 4.1: a server uses the latest configuration in its log, committed or not; when
    the entry is removed (log truncated) it reverts to the previous one."""
    net = three_with_leader()
    n1 = net.nodes["n1"]
    net.isolate("n1")
    n1.propose_conf_change(ConfChange(K.ADD_LEARNER, "n4"))
    net.settle()
    assert n1.membership.learners == ("n4",)  # in force on the leader, not committed
    assert n1.log.committed < n1.log.last_index()
    for _ in range(40):
        net.tick("n2")
        net.tick("n3")
        if net.nodes["n2"].role is Role.LEADER or net.nodes["n3"].role is Role.LEADER:
            break
    new = "n2" if net.nodes["n2"].role is Role.LEADER else "n3"
    assert net.nodes[new].role is Role.LEADER
    assert committed_with(net, new, b"other")
    net.heal()
    net.tick(new, 4)
    assert n1.role is Role.FOLLOWER and b"other" in net.values("n1")
    assert n1.membership == THREE  # the truncated change is reverted
    assert n1.conf_history.last_index() == 0


def test_ready_reports_the_configuration_when_it_changes():
    """The node learns the configuration in force from Ready.membership (appended: 4.1)."""
    net = three_with_leader()
    leader = net.nodes["n1"]
    leader.propose_conf_change(ConfChange(K.ADD_LEARNER, "n4"))
    ready = leader.ready()
    assert ready.membership is not None and ready.membership.learners == ("n4",)
    leader.advance(ready)
    assert leader.ready().membership is None


# ------------------------------------------------------------------ promotion and removal


def test_promotion_makes_the_learner_count_in_the_majority():
    """Thesis 4.1: adding one voter to three makes a majority of three of four."""
    net = three_with_leader()
    net.join("n4")
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    net.propose_conf("n1", K.PROMOTE, "n4")
    leader = net.nodes["n1"]
    assert leader.membership.voters == ("n1", "n2", "n3", "n4") and leader.quorum == 3
    assert all(net.nodes[i].membership == leader.membership for i in net.ids)
    net.isolate("n2")
    net.isolate("n3")
    commit = leader.log.committed
    leader.propose(b"y")
    net.settle()
    assert leader.log.committed == commit  # two of four voters is no majority
    net.heal()
    net.tick("n1", 6)
    assert b"y" in net.values("n4")


def test_a_leader_that_removes_itself_leads_until_the_change_commits_then_steps_down():
    """Thesis 4.2.2: the leader manages the cluster without counting itself until the entry
    removing it commits, then steps down; a removed server never campaigns."""
    net = three_with_leader()
    leader = net.nodes["n1"]
    net.cut |= {("n2", "n1"), ("n3", "n1")}
    leader.propose_conf_change(ConfChange(K.REMOVE, "n1"))
    net.settle()
    assert leader.role is Role.LEADER and leader.membership.voters == ("n2", "n3")
    assert leader.status().removed
    net.heal()
    net.tick("n1", 3)
    assert leader.log.committed >= leader.conf_history.last_index()
    assert leader.role is Role.FOLLOWER
    net.tick("n1", 100)
    assert leader.role is Role.FOLLOWER
    for _ in range(60):
        net.tick("n2")
        net.tick("n3")
    new = net.leader()
    assert new in ("n2", "n3")
    assert committed_with(net, new, b"without n1")
    assert b"without n1" not in net.values("n1")


def test_a_removed_server_does_not_disrupt_the_cluster():
    """Thesis 4.2.3: a removed server must not disrupt the cluster: it never campaigns once
    it appended its removal, and members within the lease of a live leader ignore its vote
    requests if it missed it."""
    net = three_with_leader()
    net.propose_conf("n1", K.REMOVE, "n3")
    net.tick("n1", 3)
    leader = net.nodes["n1"]
    term = leader.current_term
    assert leader.membership.voters == ("n1", "n2")
    n3 = net.nodes["n3"]
    assert n3.status().removed  # it got the entry that removes it (4.2.2)
    # It acknowledged that entry after the commit, but was told the commit (tell_removed).
    assert n3.log.committed >= leader.conf_history.last_index()
    for _ in range(60):
        net.tick("n3")
        net.tick("n1")
    assert n3.current_term == term and n3.role is Role.FOLLOWER  # never campaigns
    for vote in (MT.PRE_VOTE, MT.REQUEST_VOTE):
        for target in ("n1", "n2"):
            # As a removed member that missed its removal would; members ignore it.
            net.nodes[target].step(Message(vote, target, "n3", term + 5, log_term=term + 5,
                                           index=10 ** 6))
    net.settle()
    assert leader.role is Role.LEADER and leader.current_term == term
    assert net.nodes["n2"].current_term == term
    assert committed_with(net, "n1", b"still")


def test_restart_takes_the_configuration_from_the_log_not_the_bootstrap():
    """Thesis 4.1: the configuration is the latest in the persisted log (4.4 for snapshots)."""
    net = three_with_leader()
    net.join("n4")
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    net.propose_conf("n1", K.PROMOTE, "n4")
    expected = net.nodes["n1"].membership
    for node_id in ("n2", "n4"):
        net.restart(node_id)
        assert net.nodes[node_id].membership == expected
    # And from a snapshot: its meta carries the configuration.
    n2 = net.nodes["n2"]
    net.tick("n1", 4)
    assert n2.log.applied == n2.log.last_index()
    n2.compact(n2.log.applied, b"state")
    assert n2.log.snapshot is not None and n2.log.snapshot.meta.membership == expected
    state = PersistedState(HardState(n2.current_term, None, n2.log.committed), n2.log.snapshot,
                           [])
    again = Raft(RaftConfig("n2", ("n1", "n2", "n3")), random.Random(1), state)
    assert again.membership == expected


def test_a_learner_catches_up_through_a_snapshot():
    """Thesis 4.2.1 with 5.1: a new member far behind gets a snapshot, and its configuration."""
    net = three_with_leader()
    for i in range(5):
        assert committed_with(net, "n1", b"v%d" % i)
    leader = net.nodes["n1"]
    leader.compact(leader.log.applied, b"snap")
    net.join("n4")
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    net.tick("n1", 4)
    n4 = net.nodes["n4"]
    assert n4.log.snapshot_index >= leader.log.snapshot_index > 0
    assert n4.membership == leader.membership


def test_messages_from_strangers_are_ignored_except_a_leaders_and_vote_requests():
    """Members ignore ids outside their configuration, except a leader of a term >= theirs
    (thesis 4.1: a new member hears from the leader before it knows it is a member) and a
    vote request (4.1: answered whatever our configuration, the candidate counts its own)."""
    raft = Raft(RaftConfig("n4", ()), random.Random(1))
    raft.step(Message(MT.APPEND_ENTRIES_RESPONSE, "n4", "n1", 3, index=5))
    raft.step(Message(MT.READ_INDEX_RESPONSE, "n4", "n1", 3, index=5, context=b"r"))
    assert raft.current_term == 0 and not raft.has_ready()
    raft.step(Message(MT.PRE_VOTE, "n4", "n9", 1, index=0, log_term=0))
    [answer] = raft.ready().messages
    assert (answer.type, answer.to, answer.reject) == (MT.PRE_VOTE_RESPONSE, "n9", False)
    assert raft.current_term == 0  # a pre-vote moves no term (thesis 9.6)
    raft.step(Message(MT.HEARTBEAT, "n4", "n1", 3))
    assert raft.current_term == 3 and raft.leader_id == "n1"
    raft.step(Message(MT.HEARTBEAT, "n4", "n9", 2))
    assert raft.leader_id == "n1"
    raft.advance(raft.ready())
    # Within the lease of a live leader, a stranger's vote request is ignored (4.2.3).
    raft.step(Message(MT.REQUEST_VOTE, "n4", "n9", 4, index=0, log_term=0))
    assert raft.current_term == 3 and raft.ready().messages == ()


def test_a_voter_grants_its_vote_to_a_candidate_of_a_configuration_it_has_not_appended():
    """Thesis 4.1: "a server also grants its vote to a candidate that is not part of the
    server's latest configuration". n3 is cut off while n4 joins and is promoted and n1
    removes itself; with n2 gone, voters {n2, n3, n4} need n3's vote for n4, and n3 still
    has the configuration {n1, n2, n3}. Dropping n4's requests as a stranger's left the
    cluster without a leader for good (seed 130 of ``scripts/simulate.py --membership``)."""
    net = three_with_leader()
    net.isolate("n3")
    net.join("n4")
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    net.tick("n1", 3)
    net.propose_conf("n1", K.PROMOTE, "n4")
    net.tick("n1", 3)
    net.propose_conf("n1", K.REMOVE, "n1")
    net.tick("n1", 3)
    n1 = net.nodes["n1"]
    assert n1.role is Role.FOLLOWER and n1.membership.voters == ("n2", "n3", "n4")
    n3 = net.nodes["n3"]
    assert n3.membership == THREE
    net.heal()
    net.isolate("n2")
    net.cut |= {("n1", "n3"), ("n3", "n1"), ("n1", "n4"), ("n4", "n1")}
    for _ in range(100):
        net.tick("n3")
        net.tick("n4")
        if net.nodes["n4"].role is Role.LEADER:
            break
    assert net.nodes["n4"].role is Role.LEADER
    net.tick("n4", 3)
    assert n3.membership.voters == ("n2", "n3", "n4") and n3.leader_id == "n4"


# ------------------------------------------------------------------ TimeoutNow


def _following(node_id: str, leader: str, term: int) -> Raft:
    """A member of n1..n3 that follows ``leader`` in ``term``."""
    raft = Raft(RaftConfig(node_id, ("n1", "n2", "n3")), random.Random(1),
                PersistedState(HardState(term, None, 0)))
    raft.step(Message(MT.HEARTBEAT, node_id, leader, term))
    raft.advance(raft.ready())
    return raft


def test_a_timeout_now_from_a_non_member_changes_nothing_not_even_the_term():
    """Thesis 3.10 with 4.2.3: only the leader of the term orders an immediate campaign. A
    stranger's TimeoutNow is dropped before the term rules, so it cannot depose our leader
    by moving our term (only a leader's AppendEntries, heartbeats and snapshots are heard from
    outside the configuration, 4.1)."""
    raft = _following("n2", "n1", 3)
    for term in (3, 4, 10):
        raft.step(Message(MT.TIMEOUT_NOW, "n2", "n9", term))
        assert raft.role is Role.FOLLOWER
        assert (raft.current_term, raft.leader_id) == (3, "n1")
    assert not raft.has_ready()


def test_a_timeout_now_only_from_the_leader_of_the_term():
    """Thesis 3.10: a member that is not the leader of our term may not order a campaign;
    one of a later term tells us the term (figure 2) but is no leader we know of yet."""
    raft = _following("n2", "n1", 3)
    raft.step(Message(MT.TIMEOUT_NOW, "n2", "n3", 3))
    assert raft.role is Role.FOLLOWER and raft.current_term == 3
    raft.step(Message(MT.TIMEOUT_NOW, "n2", "n3", 4))
    assert raft.role is Role.FOLLOWER and raft.current_term == 4 and raft.leader_id is None
    raft.step(Message(MT.HEARTBEAT, "n2", "n1", 4))
    raft.step(Message(MT.TIMEOUT_NOW, "n2", "n1", 4))
    assert raft.role is Role.CANDIDATE and raft.current_term == 5


def test_a_leader_that_removed_itself_may_not_order_a_campaign():
    """Thesis 4.2.2: a leader that removed itself leads until the removal commits, counted in
    no majority; it is no voter of the followers' configuration, so its TimeoutNow is refused
    and it does not start a transfer (the node transfers first, then removes)."""
    net = three_with_leader()
    leader = net.nodes["n1"]
    net.cut |= {("n2", "n1"), ("n3", "n1")}
    leader.propose_conf_change(ConfChange(K.REMOVE, "n1"))
    net.settle()
    n2 = net.nodes["n2"]
    assert n2.membership.voters == ("n2", "n3") and n2.leader_id == "n1"
    assert "n1" in n2.peer_set  # still a peer: its removal has not committed
    term = n2.current_term
    n2.step(Message(MT.TIMEOUT_NOW, "n2", "n1", term))
    assert n2.role is Role.FOLLOWER and n2.current_term == term
    leader.transfer_leadership("n2")
    assert leader.lead_transferee is None
    assert not [m for m in net.sent if m.type is MT.TIMEOUT_NOW]


def test_a_member_that_is_no_voter_never_campaigns_even_when_told_to():
    """Thesis 4.2.2 and 4.2.3: a learner and a removed member never campaign, not even on a
    TimeoutNow from their own leader (which the leader never sends them: transfer_leadership
    refuses a non-voter; a buggy or forged one must still change nothing)."""
    net = three_with_leader()
    net.join("n4")
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    net.propose_conf("n1", K.REMOVE, "n3")
    net.tick("n1", 3)
    term = net.nodes["n1"].current_term
    for node_id in ("n4", "n3"):
        raft = net.nodes[node_id]
        assert not raft.membership.is_voter(node_id) and raft.leader_id == "n1"
        raft.step(Message(MT.TIMEOUT_NOW, node_id, "n1", term))
        raft.campaign(False)
        raft.campaign(True)
        assert raft.role is Role.FOLLOWER and raft.current_term == term
        assert not [m for m in raft.ready().messages if m.type in (MT.REQUEST_VOTE,
                                                                   MT.PRE_VOTE)]


def test_a_member_that_may_not_campaign_still_ends_the_leaders_lease():
    """Thesis 4.2.3: the lease lasts an election timeout from the leader's last word. A
    learner's timer also fires (it only does not campaign); it must then forget the leader,
    or it would ignore vote requests for good (seed 1535 of ``--membership``: a learner that
    a pending change made a voter never answered the candidate that needed its vote)."""
    net = three_with_leader()
    net.join("n4")
    net.propose_conf("n1", K.ADD_LEARNER, "n4")
    net.tick("n1", 3)
    n4 = net.nodes["n4"]
    assert n4.leader_id == "n1"
    net.isolate("n1")
    net.tick("n4", 3 * n4.config.election_ticks)
    assert n4.role is Role.FOLLOWER and n4.leader_id is None
    n4.advance(n4.ready())
    term = n4.current_term
    n4.step(Message(MT.PRE_VOTE, "n4", "n2", term + 1, index=10 ** 6, log_term=term))
    [answer] = n4.ready().messages
    assert (answer.type, answer.to, answer.reject) == (MT.PRE_VOTE_RESPONSE, "n2", False)


def test_a_leader_that_stepped_down_before_its_removal_committed_lets_the_others_elect():
    """The shape of ``--membership`` seeds 574 and 456 (found before the simulator's queue
    workload gained FIFO queues; their runs changed since). Thesis 4.2.2: n1 leads
    {n1..n4}, appends its own removal while cut off, and steps down on check-quorum before
    the removal commits. Its log is the most up to date, so it refuses n2 and n3, which
    still count it as a voter: with n4 down, neither gets 3 of the 4 votes. n1 campaigns
    under the configuration in force, {n2, n3, n4} (reconfig.removal_pending), wins with
    n2 and n3, commits its removal and steps down; then n2 or n3 is elected."""
    net = GrowingNet(4)
    net.elect("n1")
    net.settle()
    net.isolate("n1")
    net.nodes["n1"].propose_conf_change(ConfChange(K.REMOVE, "n1"))
    net.settle()
    assert net.nodes["n1"].membership.voters == ("n2", "n3", "n4")
    for _ in range(100):
        net.tick("n1")
        if net.nodes["n1"].role is not Role.LEADER:
            break
    assert net.nodes["n1"].role is not Role.LEADER  # check-quorum (thesis 6.2)
    net.heal()
    net.isolate("n4")
    for _ in range(400):
        net.tick()
        if net.leader() in ("n2", "n3"):
            break
    assert net.leader() in ("n2", "n3")
    n1 = net.nodes["n1"]
    assert n1.role is Role.FOLLOWER and not n1.membership.is_member("n1")
    assert not reconfig.removal_pending(n1)  # it committed its removal, and stays quiet
    assert committed_with(net, net.leader(), b"after n1 left")
    assert b"after n1 left" not in net.values("n1")


def test_a_follower_holding_its_own_uncommitted_removal_lets_the_others_elect():
    """Thesis 4.1 and 4.2.2, the same gap from a follower: n1 leads {n1..n4} and sends the
    removal of n4 to n4 alone, then crashes. n2 and n3 lack the entry and count n4 as a
    voter; n4's log is ahead, so it refuses them, and neither reaches 3 of 4 votes. n4
    campaigns under {n1, n2, n3} without its own vote, commits its removal, steps down, and
    n2 or n3 leads the three that are left."""
    net = GrowingNet(4)
    net.elect("n1")
    net.settle()
    net.cut |= {("n1", "n2"), ("n1", "n3")}
    net.nodes["n1"].propose_conf_change(ConfChange(K.REMOVE, "n4"))
    net.settle()
    n4 = net.nodes["n4"]
    assert n4.membership.voters == ("n1", "n2", "n3") and reconfig.removal_pending(n4)
    assert net.nodes["n2"].membership.is_voter("n4")
    net.isolate("n1")
    net.sent.clear()
    for _ in range(400):
        net.tick()
        if net.leader() in ("n2", "n3"):
            break
    # It had to lead to commit its removal (4.2.2).
    assert [m for m in net.sent if m.sender == "n4" and m.type is MT.APPEND_ENTRIES]
    assert net.leader() in ("n2", "n3")
    assert not n4.membership.is_member("n4") and not reconfig.removal_pending(n4)
    assert committed_with(net, net.leader(), b"after n4 left")


def test_a_member_whose_removal_is_pending_does_not_count_its_own_vote():
    """Thesis 4.1: a candidate needs a majority of the configuration in force, which leaves
    out a member whose removal is pending; its own vote is no part of it. With n1 removed
    from {n1, n2} in force {n2}, n1 wins only with n2's vote."""
    net = GrowingNet(2)
    net.elect("n1")
    net.settle()
    net.isolate("n1")
    n1 = net.nodes["n1"]
    n1.propose_conf_change(ConfChange(K.REMOVE, "n1"))
    net.settle()
    assert n1.membership.voters == ("n2",) and reconfig.removal_pending(n1)
    for _ in range(100):
        net.tick("n1")
        if n1.role is not Role.LEADER:
            break
    assert n1.role is not Role.LEADER  # check-quorum (thesis 6.2)
    campaigned = False
    for _ in range(200):
        net.tick("n1")
        assert n1.role is not Role.LEADER  # n2 never hears it: no majority of {n2}
        campaigned |= n1.role in (Role.PRE_CANDIDATE, Role.CANDIDATE)
        assert "n1" not in n1.votes  # it never votes for itself
    assert campaigned
    net.heal()
    for _ in range(400):
        net.tick()
        if net.leader() == "n2":
            break
    assert net.leader() == "n2" and not reconfig.removal_pending(n1)


def test_the_history_names_the_entry_that_set_each_configuration():
    """Thesis 4.1: the configuration in force at an index is the latest one at or before it;
    ``index_at`` gives the index of its entry (``tell_removed`` resends that entry)."""
    history = ConfigHistory(5, THREE)
    history.append(9, Membership(("n1", "n2")))
    history.append(14, Membership(("n1",)))
    assert [history.index_at(i) for i in (4, 5, 8, 9, 13, 14, 99)] == [5, 5, 5, 9, 9, 14, 14]
    assert history.at(13) == Membership(("n1", "n2"))
