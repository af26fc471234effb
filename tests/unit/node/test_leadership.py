"""Leadership: the one source of this node's role and leader, and the leader an error names."""

from __future__ import annotations

from dqueue.node.leadership import Leadership
from dqueue.raft import Role


def _leadership(heard: list[bool]) -> Leadership:
    return Leadership("n1", lambda: heard[0])


def test_observe_reports_a_new_known_leader_and_the_start_of_an_election():
    leadership = _leadership([True])
    assert leadership.observe(Role.FOLLOWER, "n2") == (True, False)
    assert leadership.observe(Role.FOLLOWER, "n2") == (False, False)  # the same leader
    assert leadership.observe(Role.CANDIDATE, None) == (False, True)
    assert leadership.observe(Role.CANDIDATE, None) == (False, False)  # still the same election
    assert leadership.observe(Role.LEADER, "n1") == (True, False)
    assert leadership.is_leader and leadership.last_leader_id == "n1"


def test_a_follower_names_its_leader_only_while_it_hears_from_it():
    heard = [True]
    leadership = _leadership(heard)
    leadership.observe(Role.FOLLOWER, "n2")
    assert leadership.hint() == "n2"
    heard[0] = False
    assert leadership.hint() is None


def test_a_leader_names_itself_even_when_its_election_clock_ran():
    leadership = _leadership([False])
    leadership.observe(Role.LEADER, "n1")
    assert leadership.hint() == "n1"


def test_without_a_leader_a_follower_names_the_last_one_and_a_candidate_none():
    leadership = _leadership([True])
    leadership.observe(Role.FOLLOWER, "n2")
    leadership.observe(Role.FOLLOWER, None)
    assert (leadership.leader_id, leadership.hint()) == (None, "n2")
    for campaigning in (Role.PRE_CANDIDATE, Role.CANDIDATE):
        leadership.observe(campaigning, None)
        assert leadership.hint() is None
