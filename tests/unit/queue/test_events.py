"""Event counters and the drain buffer: what the node counts and logs (dqueue/queue/events.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue.events import EventLog, QueueEvent

# max_retries=1: one retry after the first attempt, so the second failure is final.
CONFIG = dq.QueueConfig(lease_ms=1_000, max_retries=1, backoff_base_ms=100, backoff_jitter=0.0,
                        retention_ms=10**9, dedup_window_ms=10**9)
EVENTS = ["enqueued", "leased", "acked", "nacked", "expired", "dead_lettered"]


def new(task_id: str, task_type: str = "email", **kw: Any) -> dq.NewTask:
    return dq.NewTask(id=task_id, type=task_type, **kw)


def ok(state: dq.QueueState, command: Any, index: int) -> dict[str, Any]:
    outcome = state.apply(command, index)
    assert outcome["ok"], outcome
    return outcome["value"]


def test_event_log_bounds_the_buffer_and_counts_the_overflow() -> None:
    log = EventLog(max_buffered=2)
    for i in range(5):
        log.note(log.expired, QueueEvent.EXPIRED, f"t{i}", "sms", "q1" if i % 2 else "q0")
    assert log.drain() == [("expired", "t0", "sms"), ("expired", "t1", "sms")]
    assert log.dropped == 3 and log.counts()["expired"] == {"sms": 5}
    assert log.counts_by_queue()["expired"] == {"q0": {"sms": 3}, "q1": {"sms": 2}}
    assert log.drain() == []
    log.note(log.dead_lettered, QueueEvent.DEAD_LETTERED, "t9", "sms", "q0")
    assert log.drain() == [("dead_lettered", "t9", "sms")] and log.dropped == 3
    with pytest.raises(ValueError):
        EventLog(max_buffered=-1)


def test_every_event_is_counted_by_type_and_rare_ones_are_drained_in_order() -> None:
    state = dq.QueueState(CONFIG)
    assert state.event_counts() == {event: {} for event in EVENTS}
    ok(state, dq.Enqueue(tasks=(new("a"), new("b", "sms"), new("c", "sms", idempotency_key="k")),
                         now_ms=0), 1)
    ok(state, dq.Enqueue(tasks=(new("c2", "sms", idempotency_key="k"),), now_ms=0), 2)  # dup
    leased = ok(state, dq.Lease(worker_id="w", max_tasks=3, now_ms=0), 3)["tasks"]
    assert [t["id"] for t in leased] == ["a", "b", "c"]
    ok(state, dq.Ack(id="a", worker_id="w", now_ms=1), 4)
    ok(state, dq.Ack(id="a", worker_id="w", now_ms=1), 5)  # repeat: not a second ack
    ok(state, dq.Nack(id="b", worker_id="w", reason="x", dead_letter=True, now_ms=2), 6)
    assert state.drain_events() == [("dead_lettered", "b", "sms")]
    # c's lease expires at 1,000 as the clock passes, then again after its retry: dead.
    ok(state, dq.Tick(now_ms=1_000), 7)
    assert state.drain_events() == [("expired", "c", "sms")]
    ok(state, dq.Lease(worker_id="w", now_ms=1_100), 8)
    ok(state, dq.Tick(now_ms=5_000), 9)
    assert state.drain_events() == [("expired", "c", "sms"), ("dead_lettered", "c", "sms")]
    assert state.drain_events() == []
    assert state.event_counts() == {
        "enqueued": {"email": 1, "sms": 2}, "leased": {"email": 1, "sms": 3},
        "acked": {"email": 1}, "nacked": {"sms": 1}, "expired": {"sms": 2},
        "dead_lettered": {"sms": 2}}
    assert state.dropped_events() == 0


def test_failed_commands_count_nothing() -> None:
    state = dq.QueueState(CONFIG)
    ok(state, dq.Enqueue(tasks=(new("a"),), now_ms=0), 1)
    before = state.event_counts()
    for index, command in enumerate([
            dq.Enqueue(tasks=(new("b"), new("a")), now_ms=0),  # id in use: nothing enqueued
            dq.Ack(id="a", worker_id="w", now_ms=0), dq.Nack(id="a", worker_id="w", now_ms=0),
            dq.Lease(worker_id="w", types=("other",), now_ms=0)], start=2):
        state.apply(command, index)
    assert state.event_counts() == before


def test_overflow_is_counted_and_counters_stay_exact() -> None:
    state = dq.QueueState(CONFIG, max_buffered_events=3)
    tasks = tuple(new(f"t{i}", max_retries=0) for i in range(5))  # no retry
    ok(state, dq.Enqueue(tasks=tasks, now_ms=0), 1)
    ok(state, dq.Lease(worker_id="w", max_tasks=5, now_ms=0), 2)
    ok(state, dq.Tick(now_ms=1_000), 3)  # 5 expiries, each dead-lettering: 10 events
    assert state.drain_events() == [("expired", "t0", "email"), ("dead_lettered", "t0", "email"),
                                    ("expired", "t1", "email")]
    assert state.dropped_events() == 7
    counts = state.event_counts()
    assert counts["expired"] == counts["dead_lettered"] == {"email": 5}


def test_events_are_not_in_snapshots_and_survive_restore() -> None:
    quiet, busy = dq.QueueState(CONFIG), dq.QueueState(CONFIG)
    for state in (quiet, busy):
        ok(state, dq.Enqueue(tasks=(new("a"),), now_ms=0), 1)
        ok(state, dq.Lease(worker_id="w", now_ms=0), 2)
        ok(state, dq.Tick(now_ms=1_000), 3)
    busy.drain_events()
    assert quiet.snapshot() == busy.snapshot()  # drained or not, counted or not: same bytes
    counts = quiet.event_counts()
    quiet.restore(dq.QueueState(CONFIG).snapshot())
    assert quiet.event_counts() == counts  # process counters never go back
    assert quiet.drain_events() == [("expired", "a", "email")]
    fresh = dq.QueueState(CONFIG)
    fresh.restore(busy.snapshot())
    assert fresh.event_counts() == {event: {} for event in EVENTS}


@pytest.mark.parametrize("seed", range(4))
def test_counts_agree_with_outcomes_and_states(seed: int) -> None:
    """Every lease ends exactly once: leased = acked + nacked + expired + still leased."""
    rng = random.Random(seed)
    state = dq.QueueState(CONFIG, max_buffered_events=10**6)
    expected = {event: 0 for event in EVENTS}
    tokens: dict[str, str] = {}
    now_ms = 0
    for index in range(1, 600):
        now_ms += rng.choice([0, 50, 400])
        kind = rng.randrange(4)
        if kind == 0:
            task_id = f"t{index}"
            outcome = state.apply(dq.Enqueue(tasks=(new(task_id, rng.choice("ab")),),
                                             now_ms=now_ms), index)
            expected["enqueued"] += 1
        elif kind == 1:
            outcome = state.apply(dq.Lease(worker_id="w", max_tasks=2, now_ms=now_ms), index)
            for task in outcome["value"]["tasks"]:
                tokens[task["id"]] = task["lease"]["token"]
            expected["leased"] += len(outcome["value"]["tasks"])
        elif tokens:
            task_id = rng.choice(sorted(tokens))
            token = tokens.pop(task_id)
            command: Any = (dq.Ack if kind == 2 else dq.Nack)(
                id=task_id, worker_id="w", token=token, now_ms=now_ms)
            outcome = state.apply(command, index)
            if outcome["ok"]:
                expected["acked" if kind == 2 else "nacked"] += 1
        else:
            state.apply(dq.Tick(now_ms=now_ms), index)
    totals = {event: sum(by_type.values()) for event, by_type in state.event_counts().items()}
    by_status = state.stats()["by_status"]
    assert {e: totals[e] for e in ("enqueued", "leased", "acked", "nacked")} == {
        e: expected[e] for e in ("enqueued", "leased", "acked", "nacked")}
    assert totals["leased"] == (totals["acked"] + totals["nacked"] + totals["expired"]
                                + by_status["leased"])
    assert totals["dead_lettered"] == by_status["dead"] and totals["expired"] > 0
    drained = state.drain_events()
    assert sum(e[0] == "expired" for e in drained) == totals["expired"]
    assert all(state.get_task(task_id)["type"] == t for _, task_id, t in drained)
