"""Client sessions (Raft dissertation section 6.3): the table, and repeats in the state machine."""

from __future__ import annotations

import json

import pytest

import dqueue.queue as dq
from dqueue.queue.sessions import (
    DUPLICATE_REQUEST,
    STALE,
    ClientSession,
    Sessions,
    apply_once,
)

ENQUEUE = dq.Enqueue(tasks=(dq.NewTask(id="t1", type="mail"),), now_ms=1_000)
LEASE = dq.Lease(worker_id="w1", types=None, max_tasks=1, now_ms=2_000)

# ----------------------------------------------------------------- the table


def test_lookup_says_new_then_the_first_outcome_then_stale_below_first_unanswered():
    table = Sessions()
    assert table.lookup("c", 1) is None
    table.record("c", 1, 1, {"n": 1}, 10)
    table.record("c", 2, 1, {"n": 2}, 11)
    assert (table.lookup("c", 1), table.lookup("c", 2), table.lookup("c", 3)) == (
        {"n": 1}, {"n": 2}, None)
    table.record("c", 3, 2, {"n": 3}, 12)  # the client has its answer to 1
    assert table.lookup("c", 1) is STALE
    assert table.outcomes_kept() == 2
    assert table.lookup("other", 1) is None


def test_first_unanswered_never_goes_back():
    table = Sessions()
    table.record("c", 5, 5, "five", 1)
    table.record("c", 4, 2, "four", 2)  # an older forward, overtaken: applied, not kept
    assert table.lookup("c", 4) is STALE
    assert table.to_plain() == [["c", 5, 2, [[5, "five"]]]]


def test_an_out_of_order_apply_keeps_the_outcomes_in_serial_order():
    table = Sessions()
    table.record("c", 3, 1, "three", 1)
    table.record("c", 2, 1, "two", 2)  # sent again after a leader change, applied late
    table.record("c", 4, 1, "four", 3)
    assert table.to_plain() == [["c", 1, 3, [[2, "two"], [3, "three"], [4, "four"]]]]
    table.record("c", 5, 4, "five", 4)
    assert table.to_plain()[0][3] == [[4, "four"], [5, "five"]]


def test_outcomes_per_client_are_bounded_and_a_dropped_one_is_refused_not_reapplied():
    table = Sessions(max_outcomes_per_client=3)
    for seq in range(1, 6):
        table.record("c", seq, 1, seq, seq)
    assert table.outcomes_kept() == 3
    assert [table.lookup("c", s) for s in range(1, 6)] == [STALE, STALE, 3, 4, 5]


def test_clients_are_bounded_the_least_recently_active_goes_first():
    table = Sessions(max_clients=2)
    table.record("a", 1, 1, "a1", 1)
    table.record("b", 1, 1, "b1", 2)
    table.record("a", 2, 1, "a2", 3)  # a is now the most recent
    table.record("c", 1, 1, "c1", 4)
    assert len(table) == 2
    assert (table.lookup("b", 1), table.lookup("a", 2), table.lookup("c", 1)) == (
        None, "a2", "c1")


def test_idle_sessions_expire_on_cluster_time():
    table = Sessions(ttl_ms=100)
    table.record("a", 1, 1, "a1", 1_000)
    table.record("b", 1, 1, "b1", 1_050)
    assert table.expire(1_099) == 0
    assert table.expire(1_100) == 1  # a idle for exactly ttl_ms
    assert (table.lookup("a", 1), table.lookup("b", 1)) == (None, "b1")
    table.record("b", 2, 1, "b2", 900)  # a time behind (never from the state machine)
    assert table.expire(1_149) == 0  # stamped with the highest time seen: still in order
    assert table.expire(1_150) == 1
    assert len(table) == 0


def test_plain_form_round_trips_through_json_and_refuses_what_it_never_writes():
    table = Sessions()
    table.record("a", 1, 1, {"ok": True, "value": {"tasks": []}}, 5)
    table.record("b", 7, 3, {"ok": False, "code": "x", "message": "m"}, 6)
    plain = json.loads(json.dumps(table.to_plain()))
    other = Sessions()
    other.load_plain(plain)
    assert other.to_plain() == table.to_plain()
    assert other.lookup("b", 7) == table.lookup("b", 7)
    assert other.lookup("b", 2) is STALE
    for bad in ({}, [["a", 1, 5]], [["", 1, 5, []]], [["a", -1, 5, []]], [["a", 1, 5, {}]],
                [["a", 2, 5, [[1, "below first"]]]], [["a", 1, 5, [[3, "x"], [2, "y"]]]],
                [["a", 1, 6, []], ["b", 1, 5, []]], [["a", 1, 5, []], ["a", 1, 6, []]],
                [["a", True, 5, []]]):
        with pytest.raises(ValueError):
            other.load_plain(bad)
    assert other.to_plain() == table.to_plain()  # unchanged by a refused load


def test_a_restored_table_stamps_exactly_as_the_one_it_was_taken_from():
    table = Sessions(ttl_ms=100)
    table.record("a", 1, 1, "a1", 1_000)
    table.expire(1_100)  # empty again
    restored = Sessions(ttl_ms=100)
    restored.load_plain(table.to_plain())
    for t in (table, restored):
        t.record("b", 1, 1, "b1", 900)  # a caller whose times go back (the simulator's may)
        t.record("c", 1, 1, "c1", 950)
    assert table.to_plain() == restored.to_plain()


def test_equal_histories_give_equal_tables():
    def history() -> Sessions:
        table = Sessions(ttl_ms=50, max_outcomes_per_client=2, max_clients=2)
        for step, (client, seq, first) in enumerate(
                [("a", 1, 1), ("b", 1, 1), ("a", 3, 1), ("a", 2, 1), ("c", 1, 1), ("b", 2, 2),
                 ("a", 4, 3), ("c", 2, 1)]):
            table.record(client, seq, first, [client, seq], step * 20)
            table.expire(step * 20)
        return table

    assert json.dumps(history().to_plain()) == json.dumps(history().to_plain())


# ----------------------------------------------------------------- repeats in the state machine


def _session(seq: int, first: int = 1) -> ClientSession:
    return ClientSession("n2.abc", seq, first)


def test_a_repeated_enqueue_returns_the_same_task_and_creates_one_task():
    state = dq.QueueState()
    first = apply_once(state, ENQUEUE, 1, _session(1))
    before = state.snapshot()
    again = apply_once(state, ENQUEUE, 2, _session(1))
    assert again == first and first["value"]["duplicates"] == [False]
    assert state.snapshot() == before
    assert state.stats()["by_status"]["pending"] == 1
    # Without a session the same command is applied again (and fails: the id exists).
    assert state.apply(ENQUEUE, 3)["ok"] is False


def test_a_repeated_lease_does_not_lease_twice():
    state = dq.QueueState()
    apply_once(state, ENQUEUE, 1, _session(1))
    apply_once(state, dq.Enqueue(tasks=(dq.NewTask(id="t2", type="mail"),), now_ms=1_000), 2,
               _session(2))
    leased = apply_once(state, LEASE, 3, _session(3))
    again = apply_once(state, LEASE, 4, _session(3))
    assert again == leased
    assert [t["id"] for t in leased["value"]["tasks"]] == ["t1"]
    assert state.get_task("t2")["status"] == "pending"
    assert state.get_task("t1")["attempts"] == 1


def test_a_repeat_after_a_snapshot_restore_is_answered_from_the_restored_table():
    state = dq.QueueState()
    first = apply_once(state, ENQUEUE, 1, _session(1))
    restored = dq.QueueState()
    restored.restore(state.snapshot())
    assert restored.snapshot() == state.snapshot()
    before = restored.snapshot()
    assert apply_once(restored, ENQUEUE, 2, _session(1)) == first
    assert restored.snapshot() == before


def test_a_repeat_below_first_unanswered_is_refused_and_not_applied():
    state = dq.QueueState()
    apply_once(state, ENQUEUE, 1, _session(1))
    apply_once(state, dq.Tick(now_ms=1_500), 2, _session(2, first=2))  # 1 was answered
    before = state.snapshot()
    outcome = apply_once(state, ENQUEUE, 3, _session(1))
    assert (outcome["ok"], outcome["code"]) == (False, DUPLICATE_REQUEST)
    assert outcome["message"]
    assert state.snapshot() == before


def test_a_follower_records_outcomes_nobody_waits_for_and_returns_none():
    follower, leader = dq.QueueState(), dq.QueueState()
    assert apply_once(follower, ENQUEUE, 1, _session(1), reply=False) is None
    first = apply_once(leader, ENQUEUE, 1, _session(1))
    assert follower.snapshot() == leader.snapshot()
    assert follower.sessions.lookup("n2.abc", 1) == first  # it can answer the repeat as leader
    assert apply_once(follower, ENQUEUE, 2, _session(1), reply=False) is None


def test_sessions_expire_as_cluster_time_passes():
    state = dq.QueueState()
    apply_once(state, ENQUEUE, 1, _session(1))
    later = state.sessions.ttl_ms + 1_000
    apply_once(state, dq.Tick(now_ms=later), 2, ClientSession("n3.def", 1, 1))
    assert state.sessions.lookup("n2.abc", 1) is None
    assert len(state.sessions) == 1


def test_snapshots_without_sessions_keep_their_bytes_and_older_snapshots_restore():
    state = dq.QueueState()
    state.apply(ENQUEUE, 1)
    data = state.snapshot()
    assert b'"sessions"' not in data  # a state that never saw a session writes the old form
    apply_once(state, dq.Tick(now_ms=1_200), 2, _session(1))
    with_sessions = state.snapshot()
    assert b'"sessions"' in with_sessions
    restored = dq.QueueState()
    restored.restore(data)
    assert len(restored.sessions) == 0 and restored.snapshot() == data
    document = json.loads(with_sessions)
    document["sessions"] = {"not": "a list"}
    with pytest.raises(ValueError):
        restored.restore(json.dumps(document).encode())
    assert restored.snapshot() == data
