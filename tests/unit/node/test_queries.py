"""Read queries: validation, queue reads on a real QueueState, and the node's own views."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.node import queries
from dqueue.queue import QueueState, command_from_plain
from dqueue.raft import Membership, PeerStatus, ProgressState, Role, Status
from tests.depth import examples


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"op": "drop"}, "op"),
        ({}, "op"),
        ({"op": "get"}, "id"),
        ({"op": "get", "id": ""}, "id"),
        ({"op": "get", "id": "a", "extra": 1}, "extra"),
        ({"op": "list"}, "status"),
        ({"op": "list", "status": "dead", "limit": "5"}, "limit"),
        ({"op": "list", "status": "dead", "type": 3}, "type"),
    ],
)
def test_bad_queries_name_the_field(query, field):
    with pytest.raises(queries.BadQuery, match=field):
        queries.check_query(query)


def test_queue_reads_on_applied_state():
    queue = QueueState()
    queue.apply(command_from_plain({"op": "enqueue", "now_ms": 10,
                                    "tasks": [{"id": "a", "type": "t"}]}), 1)
    assert queries.check_query({"op": "get", "id": "a"}) == "get"
    assert queries.run_queue_query(queue, {"op": "get", "id": "a"}, dict)["id"] == "a"
    stats = queries.run_queue_query(queue, {"op": "stats"}, lambda: {"role": "leader"})
    assert stats["by_status"]["pending"] == 1
    assert stats["raft"] == {"role": "leader"}
    listing = queries.run_queue_query(queue, {"op": "list", "status": "pending"}, dict)
    assert [t["id"] for t in listing["tasks"]] == ["a"]
    with pytest.raises(queries.BadQuery, match="status"):
        queries.run_queue_query(queue, {"op": "list", "status": "nope"}, dict)


def _view(role: Role, progress: dict[str, PeerStatus]) -> queries.NodeView:
    status = Status(id="n1", role=role, term=3, vote="n1", leader_id="n1" if progress else None,
                    commit=9, applied=8, last_index=10, snapshot_index=2, progress=progress)
    return queries.NodeView(
        node_id="n1", status=status, leader_http="127.0.0.1:8081",
        members={"n1": "127.0.0.1:9001", "n2": "127.0.0.1:9002"},
        http_addrs={"n1": "127.0.0.1:8081"}, stopping=False)


def test_health_and_cluster_on_a_leader():
    view = _view(Role.LEADER, {"n1": PeerStatus(10, 11, ProgressState.REPLICATE, True),
                               "n2": PeerStatus(7, 8, ProgressState.REPLICATE, True)})
    health = queries.health(view)
    assert health == {"status": "ok", "node_id": "n1", "role": "leader", "term": 3,
                      "leader_id": "n1", "leader_http": "127.0.0.1:8081", "commit_index": 9,
                      "applied_index": 8, "catch_up_index": 0}
    members = queries.cluster(view)["members"]
    assert members[0] == {"id": "n1", "raft_addr": "127.0.0.1:9001",
                          "http_addr": "127.0.0.1:8081", "role": "leader", "match_index": 10,
                          "lag": 0, "suffrage": "voter"}
    assert members[1]["lag"] == 3
    assert members[1]["http_addr"] is None


def test_cluster_shows_voters_learners_and_removed_members():
    progress = {"n2": PeerStatus(7, 8, ProgressState.REPLICATE, True),
                "n3": PeerStatus(4, 5, ProgressState.REPLICATE, True)}
    status = Status(id="n1", role=Role.LEADER, term=3, vote="n1", leader_id="n1", commit=9,
                    applied=8, last_index=10, snapshot_index=2, progress=progress,
                    membership=Membership(("n1", "n2"), ("n3",)))
    view = queries.NodeView(node_id="n1", status=status, leader_http=None,
                            members={"n1": "h:1", "n2": "h:2", "n3": "h:3", "n4": "h:4"},
                            http_addrs={}, stopping=False)
    out = queries.cluster(view)
    assert (out["voters"], out["learners"]) == (["n1", "n2"], ["n3"])
    by_id = {m["id"]: m for m in out["members"]}
    assert [by_id[i]["suffrage"] for i in ("n1", "n2", "n3", "n4")] == [
        "voter", "voter", "learner", "removed"]
    assert by_id["n3"]["lag"] == 6  # a learner's lag, from the leader's progress


def test_a_removed_member_says_so():
    status = Status(id="n1", role=Role.FOLLOWER, term=3, vote=None, leader_id="n2", commit=9,
                    applied=9, last_index=9, snapshot_index=0,
                    membership=Membership(("n2", "n3")), removed=True)
    view = queries.NodeView(node_id="n1", status=status, leader_http=None, members={},
                            http_addrs={}, stopping=False)
    assert queries.health(view)["status"] == "removed"


def test_cluster_on_a_follower_has_no_progress():
    members = queries.cluster(_view(Role.FOLLOWER, {}))["members"]
    assert members[1]["match_index"] is None
    assert members[1]["lag"] is None


_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
            | st.text() | st.binary())
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_SCALARS.filter(lambda v: not isinstance(v, float)),
                                         inner, max_size=4), max_leaves=12)
_KEYS = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8)


@settings(max_examples=examples(300), deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6),
       st.sampled_from(["get", "stats", "list", "health", [1], {"a": 1}, None, 5]))
def test_check_query_accepts_any_msgpack_map_without_raising(query, op):
    # The IPC socket hands over any msgpack map: mixed key types once crashed the Raft process
    # (sorted() of str and int keys). Every input is either a query or a BadQuery.
    query = {**query, "op": op}
    with contextlib.suppress(queries.BadQuery):
        assert queries.check_query(query) in queries.QUEUE_OPS | queries.LOCAL_OPS


def test_an_int_key_is_named_in_the_error():
    with pytest.raises(queries.BadQuery, match="5: unknown field"):
        queries.check_query({"op": "stats", 5: 1, "z": 2})


def test_health_says_no_leader_when_none_is_known():
    view = queries.NodeView(
        node_id="n1", status=Status("n1", Role.FOLLOWER, 4, None, None, 9, 9, 9, 0),
        leader_http=None, members={"n1": "127.0.0.1:1"}, http_addrs={}, stopping=False)
    assert queries.health(view)["status"] == "no_leader"
