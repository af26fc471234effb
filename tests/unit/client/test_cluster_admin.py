"""ClusterAdmin (dqueue/client/cluster_admin.py) over a scripted server: the requests it sends,
a pending change asked again, and the wait for a learner to catch up."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.client.cluster_admin import ClusterAdmin
from dqueue.client.errors import InvalidRequest, ServerError, error_from_code
from tests.unit.client.fakes import ScriptedRequester


def _change(member: str, voters: list[str], learners: list[str]) -> dict[str, Any]:
    return {"id": member, "change": "x", "index": 9, "voters": voters, "learners": learners}




def _status(lag: int | None, match: int = 7) -> dict[str, Any]:
    return {"leader_id": "n1", "members": [{"id": "n1", "lag": 0, "match_index": 9},
                                           {"id": "n4", "lag": lag, "match_index": match}]}


def test_add_member_adds_a_learner_waits_for_it_then_promotes_it():
    pending = error_from_code("membership_change_pending", "busy", status=409)
    # Not heard yet (match 0: a small log makes its lag look small), behind, caught up.
    server = ScriptedRequester([_change("n4", ["n1"], ["n4"]), _status(3, match=0), _status(500),
                       _status(3), pending, _change("n4", ["n1", "n4"], [])])
    admin = ClusterAdmin(server, sleep=lambda _s: None)
    done = admin.add_member("n4", "h:1", "h:2", public_key="K" * 40, max_lag=10)
    assert done["voters"] == ["n1", "n4"]
    assert server.requests[0] == ("POST", "/cluster/members", {
        "id": "n4", "raft_addr": "h:1", "http_addr": "h:2", "public_key": "K" * 40})
    assert [r[:2] for r in server.requests[1:]] == [("GET", "/cluster?leader=true")] * 3 + [
        ("POST", "/cluster/members/n4/promote")] * 2


def test_a_learner_is_left_a_learner_and_other_refusals_are_raised():
    server = ScriptedRequester([_change("n4", ["n1"], ["n4"])])
    assert ClusterAdmin(server).add_member("n4", "h:1", "h:2", learner=True)["learners"] == [
        "n4"]
    exists = error_from_code("member_exists", "n4 is a member already", status=409)
    with pytest.raises(InvalidRequest) as caught:
        ClusterAdmin(ScriptedRequester([exists])).remove("n4")
    assert caught.value.code == "member_exists"


def test_a_learner_that_never_catches_up_times_out():
    server = ScriptedRequester([_status(900)] * 100)
    admin = ClusterAdmin(server, deadline_s=0.0, sleep=lambda _s: None)
    with pytest.raises(ServerError, match="did not catch up"):
        admin.wait_caught_up("n4", max_lag=10)


def test_unreadable_answers_are_bad_replies():
    with pytest.raises(ServerError) as caught:
        ClusterAdmin(ScriptedRequester([{"voters": "n1"}])).promote("n4")
    assert caught.value.code == "bad_reply"
