"""RequestTable: stages, deadlines in a heap, parking re-arms, lazy cleanup."""

from __future__ import annotations

from dqueue.node.requests import Pending, ReplyTo, RequestTable, Stage


def _req(rid: str, deadline_ms: float, wait_until_ms: float = 0.0,
         stage: Stage = Stage.WAIT_LEADER) -> Pending:
    return Pending(rid=rid, reply_to=ReplyTo(identity=b"i"), is_read=False, body={"op": "tick"},
                   deadline_ms=deadline_ms, wait_until_ms=wait_until_ms, stage=stage)


def test_add_rejects_a_duplicate_request_id():
    table = RequestTable()
    assert table.add(_req("a", 100))
    assert not table.add(_req("a", 200))
    assert len(table.pending) == 1


def test_expired_returns_due_requests_in_deadline_order():
    table = RequestTable()
    for rid, deadline in (("late", 300), ("early", 100), ("mid", 200)):
        table.add(_req(rid, deadline))
    assert table.next_deadline_ms() == 100
    assert [r.rid for r in table.expired(250)] == ["early", "mid"]
    assert list(table.pending) == ["late"]
    assert table.next_deadline_ms() == 300


def test_answered_requests_never_expire():
    table = RequestTable()
    table.add(_req("a", 100))
    assert table.pop("a") is not None
    assert table.pop("a") is None
    assert table.expired(1_000) == []
    assert table.next_deadline_ms() is None


def test_stages_are_tracked_without_scans():
    table = RequestTable()
    a, b = _req("a", 100), _req("b", 100)
    table.add(a)
    table.add(b)
    table.move(a, Stage.PROPOSED)
    assert [r.rid for r in table.in_stage(Stage.WAIT_LEADER)] == ["b"]
    assert [r.rid for r in table.in_stage(Stage.PROPOSED)] == ["a"]
    assert table.count(Stage.PROPOSED) == 1
    table.pop("a")
    assert table.count(Stage.PROPOSED) == 0


def test_a_parked_lease_expires_at_the_end_of_its_wait_not_its_deadline():
    table = RequestTable()
    lease = _req("lease", deadline_ms=5_000, wait_until_ms=1_000, stage=Stage.PROPOSED)
    table.add(lease)
    table.move(lease, Stage.PARKED)
    assert table.expired(999) == []
    assert table.expired(1_000) == [lease]


def test_a_request_that_leaves_parking_keeps_its_own_deadline():
    table = RequestTable()
    lease = _req("lease", deadline_ms=5_000, wait_until_ms=1_000, stage=Stage.PROPOSED)
    table.add(lease)
    table.move(lease, Stage.PARKED)
    table.move(lease, Stage.PROPOSED)  # re-proposed when a task became visible
    assert table.expired(1_000) == []
    assert table.expired(5_000) == [lease]
