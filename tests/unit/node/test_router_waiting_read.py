"""``GET /tasks/{id}?wait=``: a ``get`` with ``wait_ms`` past its read point waits in the
router's WAITING_READ stage until its task is finished (completed, dead, cancelled) or gone, or
until the end of its wait, then is answered with the task as it is then."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.node import queries
from dqueue.node.ipc_server import ReadRequest
from dqueue.node.requests import Pending, ReplyTo, RequestTable, Stage, monotonic_ms
from dqueue.node.router import RequestRouter
from dqueue.raft import ReadState
from tests.unit.node.test_router import ENQUEUE, LEASE, Node

WAIT_MS = 5_000


def _waiting_get(p: Node, router: RequestRouter, rid: str = "g", task_id: str = "t1",
                 wait_ms: int = WAIT_MS) -> None:
    """Accept a waiting get and take it past its read point (ReadIndex at what is applied)."""
    router.accept_read(ReadRequest(b"api", rid, {"op": "get", "id": task_id,
                                                 "wait_ms": wait_ms}, 1_000 + wait_ms, False))
    router.flush_reads()
    router.on_read_states((ReadState(p.applied, p.read_contexts[-1]),), p.applied)


def _leased(p: Node, router: RequestRouter) -> str:
    """Enqueue t1 and lease it; its lease token."""
    p.apply(router, "e", ENQUEUE)
    outcome = p.apply(router, "l", LEASE)
    return outcome["value"]["tasks"][0]["lease"]["token"]


def _answers(p: Node, rid: str) -> list[Any]:
    return [value for _, answered, _, value in p.ipc.answers if answered == rid]


@pytest.mark.parametrize(("finish", "status"), [
    ({"op": "ack", "result": {"rows": 3}}, "completed"),
    ({"op": "nack", "reason": "E: x", "dead_letter": True}, "dead"),
])
def test_a_waiting_get_is_answered_when_its_leased_task_finishes(finish, status):
    p = Node()
    router = RequestRouter(p.links())
    token = _leased(p, router)
    _waiting_get(p, router)
    assert router.table.count(Stage.WAITING_READ) == 1 and _answers(p, "g") == []
    p.apply(router, "other", {"op": "enqueue", "tasks": [{"id": "t2", "type": "mail"}]})
    assert _answers(p, "g") == []  # another task's entry: still waiting
    p.apply(router, "f", {**finish, "id": "t1", "worker_id": "w", "token": token})
    [task] = _answers(p, "g")
    assert task["status"] == status
    assert task.get("result") == finish.get("result")
    assert router.table.count(Stage.WAITING_READ) == 0 and "g" not in router.table.pending


def test_a_waiting_get_is_answered_when_its_pending_task_is_cancelled():
    p = Node()
    router = RequestRouter(p.links())
    p.apply(router, "e", ENQUEUE)
    _waiting_get(p, router)
    assert _answers(p, "g") == []
    p.apply(router, "c", {"op": "cancel", "id": "t1"})
    [task] = _answers(p, "g")
    assert task["status"] == "cancelled"


def test_a_waiting_get_is_answered_at_the_end_of_its_wait_with_the_task_as_it_is():
    p = Node()
    router = RequestRouter(p.links())
    _leased(p, router)
    _waiting_get(p, router, wait_ms=30)
    router.expire(monotonic_ms() + 5)
    assert _answers(p, "g") == []  # not yet
    router.expire(monotonic_ms() + 31)
    [task] = _answers(p, "g")
    assert task["status"] == "leased"
    assert "g" not in router.table.pending


def test_a_wait_longer_than_the_nodes_max_wait_is_cut_to_it():
    p = Node()
    router = RequestRouter(p.links())  # max_wait_ms 20,000
    _leased(p, router)
    _waiting_get(p, router, wait_ms=3_600_000)
    request = router.table.pending["g"]
    assert request.wait_until_ms <= monotonic_ms() + 20_000
    router.expire(monotonic_ms() + 20_001)
    assert [task["status"] for task in _answers(p, "g")] == ["leased"]


@pytest.mark.parametrize("task_id", ["t1", "missing"])
def test_a_finished_or_missing_task_is_answered_at_once(task_id):
    p = Node()
    router = RequestRouter(p.links())
    p.apply(router, "e", ENQUEUE)
    p.apply(router, "c", {"op": "cancel", "id": "t1"})
    _waiting_get(p, router, task_id=task_id)
    [value] = _answers(p, "g")
    assert (value is None) == (task_id == "missing")
    assert router.table.count(Stage.WAITING_READ) == 0


def test_a_get_without_wait_is_answered_at_its_read_point_even_when_unfinished():
    p = Node()
    router = RequestRouter(p.links())
    p.apply(router, "e", ENQUEUE)
    router.accept_read(ReadRequest(b"api", "g", {"op": "get", "id": "t1"}, 1_000, False))
    router.flush_reads()
    router.on_read_states((ReadState(p.applied, p.read_contexts[-1]),), p.applied)
    assert [task["status"] for task in _answers(p, "g")] == ["pending"]


def test_a_waiting_get_waits_for_its_read_point_before_it_looks_at_the_task():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_read(ReadRequest(b"api", "g", {"op": "get", "id": "t1", "wait_ms": WAIT_MS},
                                   10_000, False))
    router.flush_reads()
    # The leader's commit index is 1 (the enqueue) ahead of this node's state machine: the
    # read does not say "no such task" before the enqueue is applied.
    router.on_read_states((ReadState(1, p.read_contexts[-1]),), p.applied)
    assert _answers(p, "g") == []
    p.apply(router, "e", ENQUEUE)
    assert _answers(p, "g") == [] and router.table.count(Stage.WAITING_READ) == 1


@pytest.mark.parametrize("wait_ms", [-1, 1.5, True, "5"])
def test_a_bad_wait_ms_is_refused(wait_ms):
    with pytest.raises(queries.BadQuery, match="wait_ms"):
        queries.check_query({"op": "get", "id": "a", "wait_ms": wait_ms})


def test_wait_ms_is_only_a_get_field():
    assert queries.wait_ms_of({"op": "get", "id": "a", "wait_ms": 7}) == 7
    assert queries.wait_ms_of({"op": "get", "id": "a"}) == 0
    with pytest.raises(queries.BadQuery, match="wait_ms"):
        queries.check_query({"op": "stats", "wait_ms": 5})


def test_a_waiting_read_expires_at_the_end_of_its_wait_not_its_deadline():
    table = RequestTable()
    read = Pending(rid="g", reply_to=ReplyTo(), is_read=True, body={}, deadline_ms=5_000,
                   wait_until_ms=1_000, stage=Stage.READ_APPLY)
    table.add(read)
    assert table.next_deadline_ms() == 5_000
    table.move(read, Stage.WAITING_READ)
    assert table.next_deadline_ms() == 1_000
    assert table.expired(999) == []
    assert table.expired(1_000) == [read]
    assert table.expired(5_000) == []  # its first deadline is stale: answered once
