"""The invariant checker catches each kind of safety violation it claims to."""

from __future__ import annotations

import random

import pytest

from dqueue.raft import Entry, HardState, PersistedState, Raft, RaftConfig, Ready, Role
from dqueue.sim import Checker, InvariantViolation

MEMBERS = ("n1", "n2", "n3")


def member(node_id: str, entries: list[Entry], term: int = 1, commit: int = 0) -> Raft:
    state = PersistedState(HardState(term, None, commit), None, entries)
    return Raft(RaftConfig(node_id, MEMBERS), random.Random(1), state)


def test_two_leaders_in_one_term():
    checker = Checker()
    a, b = member("n1", []), member("n2", [])
    a.role = b.role = Role.LEADER
    checker.check_leader(a)
    with pytest.raises(InvariantViolation, match="election_safety"):
        checker.check_leader(b)


def test_leader_missing_a_committed_entry():
    checker = Checker()
    follower = member("n1", [Entry(1, 1, data=b"x")], commit=1)
    checker.check_commit(follower, 0)
    leader = member("n2", [Entry(1, 2, data=b"y")], term=2)
    leader.role = Role.LEADER
    with pytest.raises(InvariantViolation, match="leader_completeness"):
        checker.check_leader(leader)


def test_same_index_and_term_with_different_data():
    checker = Checker()
    a = member("n1", [Entry(1, 1, data=b"x")])
    b = member("n2", [Entry(1, 1, data=b"y")])
    checker.check_persisted(a, Ready(entries=(Entry(1, 1, data=b"x"),)))
    with pytest.raises(InvariantViolation, match="log_matching"):
        checker.check_persisted(b, Ready(entries=(Entry(1, 1, data=b"y"),)))


def test_committed_entry_changed():
    checker = Checker()
    checker.check_commit(member("n1", [Entry(1, 1, data=b"x")], commit=1), 0)
    with pytest.raises(InvariantViolation, match="committed_entry_changed"):
        checker.check_commit(member("n2", [Entry(1, 2, data=b"y")], term=2, commit=1), 0)


def test_applied_out_of_order_or_different():
    checker = Checker()
    checker.check_commit(member("n1", [Entry(1, 1, data=b"x"), Entry(2, 1, data=b"z")],
                                commit=2), 0)
    with pytest.raises(InvariantViolation, match="applied_order"):
        checker.check_applied("n1", 0, (Entry(2, 1, data=b"z"),))
    with pytest.raises(InvariantViolation, match="state_machine_safety"):
        checker.check_applied("n2", 0, (Entry(1, 1, data=b"other"),))
    checker.check_applied("n3", 0, (Entry(1, 1, data=b"x"),))


def test_value_applied_twice_on_one_member():
    checker = Checker()
    checker.check_value_applied("n1", 1, b"v1", duplicate=False)
    checker.check_value_applied("n2", 1, b"v1", duplicate=False)  # another member: fine
    assert checker.acked == {b"v1"}
    with pytest.raises(InvariantViolation, match="duplicate_apply"):
        checker.check_value_applied("n1", 2, b"v1", duplicate=True)
    expected = Checker(duplicates_expected=True)
    expected.check_value_applied("n1", 2, b"v1", duplicate=True)
    assert expected.duplicates == 1


def test_commit_going_backwards():
    checker = Checker()
    raft = member("n1", [Entry(1, 1)], commit=1)
    with pytest.raises(InvariantViolation, match="commit_monotonic"):
        checker.check_commit(raft, 2)
