"""The checker on synthetic histories: each violation kind is detected, and a clean run passes."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.chaos.checker import check, pair_operations
from dqueue.chaos.history import Event, EventType, Op


class Builder:
    """Writes a synthetic history with explicit times."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, time_ms: float, process: str, kind: EventType, f: Op,
            value: dict[str, Any] | None = None, error: str | None = None) -> Builder:
        self.events.append(Event(len(self.events), time_ms, process, kind, f, value or {}, error))
        return self

    def enqueue(self, t0: float, t1: float, key: str, outcome: EventType,
                task_id: str | None = None, process: str = "p1") -> Builder:
        self.add(t0, process, EventType.INVOKE, Op.ENQUEUE, {"key": key})
        value = {"key": key, "id": task_id} if task_id else {"key": key}
        return self.add(t1, process, outcome, Op.ENQUEUE, value)

    def lease(self, t0: float, t1: float, task_id: str | None, key: str | None = None,
              token: str = "", process: str = "w1") -> Builder:
        self.add(t0, process, EventType.INVOKE, Op.LEASE, {"worker": process})
        value = {"worker": process, "id": task_id, "key": key, "token": token}
        return self.add(t1, process, EventType.OK, Op.LEASE, value)

    def ack(self, t0: float, t1: float, task_id: str, token: str, outcome: EventType,
            process: str = "w1") -> Builder:
        request = {"worker": process, "id": task_id, "token": token}
        self.add(t0, process, EventType.INVOKE, Op.ACK, request)
        return self.add(t1, process, outcome, Op.ACK, request)

    def final(self, t: float, task_id: str, key: str | None, status: str = "completed") -> Builder:
        return self.add(t, "final", EventType.OK, Op.FINAL,
                        {"id": task_id, "key": key, "status": status})

    def missing(self, t: float, task_id: str) -> Builder:
        return self.add(t, "final", EventType.FAIL, Op.FINAL, {"id": task_id}, "not_found")

    def observe(self, t: float, node: str, role: str, term: int, leader: str | None) -> Builder:
        return self.add(t, "observer", EventType.INFO, Op.OBSERVE,
                        {"node": node, "role": role, "term": term, "leader_id": leader})


def clean_run() -> Builder:
    """Two tasks enqueued, leased, acked and read back completed; one leader."""
    b = Builder()
    b.observe(0, "n1", "leader", 2, "n1")
    b.enqueue(10, 20, "k1", EventType.OK, "t1")
    b.enqueue(30, 40, "k2", EventType.OK, "t2")
    b.lease(50, 60, "t1", "k1", "5.0").ack(70, 80, "t1", "5.0", EventType.OK)
    b.lease(90, 100, "t2", "k2", "7.0").ack(110, 120, "t2", "7.0", EventType.OK)
    b.add(130, "runner", EventType.INFO, Op.PHASE, {"phase": "drain"})
    b.final(200, "t1", "k1").final(201, "t2", "k2")
    return b


def test_clean_history_is_valid():
    report = check(clean_run().events)
    assert report.valid, report.render()
    assert report.acknowledged_enqueues == 2
    assert report.tasks_delivered == 2
    assert report.duplicate_deliveries == 0
    assert report.op_counts["enqueue"] == {"ok": 2}
    assert "VALID" in report.render()


def test_lost_acknowledged_enqueue_is_detected():
    b = clean_run()
    b.enqueue(140, 150, "k3", EventType.OK, "t3").missing(202, "t3")
    report = check(b.events)
    assert not report.valid
    assert report.lost == ["k3=t3"]
    assert any("lost" in p for p in report.problems)


def test_acknowledged_enqueue_never_read_is_unverified():
    b = clean_run().enqueue(140, 150, "k3", EventType.OK, "t3")
    report = check(b.events)
    assert not report.valid
    assert report.unverified == ["k3=t3"]


def test_unknown_enqueue_that_vanished_is_not_a_loss():
    b = clean_run().enqueue(140, 150, "k3", EventType.INFO)
    report = check(b.events)
    assert report.valid, report.render()
    assert report.enqueue_keys == 3


def test_task_not_completed_after_drain_is_detected_unless_disabled():
    b = clean_run().enqueue(140, 150, "k3", EventType.OK, "t3").final(203, "t3", "k3", "pending")
    assert check(b.events).not_drained == ["k3=t3:pending"]
    assert check(b.events, expect_drained=False).valid


def test_two_successful_acks_with_different_tokens_is_double_completion():
    b = clean_run()
    b.lease(140, 150, "t1", "k1", "9.0", process="w2")
    b.ack(160, 170, "t1", "9.0", EventType.OK, process="w2")
    report = check(b.events)
    assert report.completed_twice == ["t1"]
    assert report.redelivered_after_ack == ["t1"]
    assert not report.valid


def test_lease_after_acknowledged_ack_is_detected_even_without_second_ack():
    b = clean_run().lease(140, 150, "t2", "k2", "11.0", process="w2")
    report = check(b.events)
    assert report.redelivered_after_ack == ["t2"]
    assert report.completed_twice == []
    assert not report.valid


def test_repeated_ack_with_same_token_is_fine():
    b = clean_run().ack(140, 150, "t1", "5.0", EventType.OK)
    assert check(b.events).valid


def test_lease_concurrent_with_ack_is_a_duplicate_not_a_violation():
    b = Builder()
    b.enqueue(0, 10, "k1", EventType.OK, "t1")
    b.lease(20, 30, "t1", "k1", "3.0", process="w1")
    b.ack(40, 100, "t1", "3.0", EventType.INFO, process="w1")  # unknown: maybe lost
    b.lease(90, 110, "t1", "k1", "8.0", process="w2")  # invoked before any ack was known ok
    b.ack(120, 130, "t1", "8.0", EventType.OK, process="w2")
    b.final(200, "t1", "k1")
    report = check(b.events)
    assert report.valid, report.render()
    assert report.tasks_delivered_more_than_once == 1
    assert report.duplicate_deliveries == 1


def test_unexpected_task_from_a_lease_is_detected():
    b = clean_run().lease(140, 150, "t9", "k-never", "12.0")
    report = check(b.events)
    assert report.unexpected == ["t9"]
    assert not report.valid


def test_unexpected_task_in_final_state_without_key_is_detected():
    b = clean_run().final(205, "t8", None)
    assert check(b.events).unexpected == ["t8"]


def test_two_tasks_for_one_key_is_detected():
    b = clean_run()
    b.enqueue(140, 150, "k1", EventType.OK, "t5", process="p2")
    b.final(205, "t5", "k1")
    report = check(b.events)
    assert report.key_conflicts == ["k1"]
    assert not report.valid


def test_definitely_failed_enqueue_that_took_effect_is_detected():
    b = clean_run().enqueue(140, 150, "k4", EventType.FAIL).final(205, "t4", "k4")
    report = check(b.events)
    assert report.failed_but_present == ["k4"]
    assert not report.valid


def test_unknown_enqueue_that_took_effect_is_fine():
    b = clean_run().enqueue(140, 150, "k4", EventType.INFO).final(205, "t4", "k4")
    assert check(b.events).valid


def test_two_leaders_in_one_term_is_detected():
    b = clean_run().observe(150, "n2", "leader", 2, "n2")
    report = check(b.events)
    assert report.election_safety_violations == ["term 2: ['n1', 'n2']"]
    assert not report.valid


def test_elections_are_counted_from_observations():
    b = clean_run()
    b.observe(140, "n2", "follower", 2, "n1")
    b.observe(150, "n2", "candidate", 3, None)
    b.observe(160, "n2", "leader", 4, "n2")
    b.observe(170, "n3", "follower", 4, "n2")
    b.observe(180, "n3", "leader", 5, "n3")
    report = check(b.events)
    assert report.leader_changes == 2
    assert report.terms_advanced == 3
    assert report.valid


def test_longest_unavailability_window_ends_at_the_drain_phase():
    b = Builder()
    b.enqueue(0, 100, "k1", EventType.OK, "t1")
    b.enqueue(100, 3100, "k2", EventType.INFO)  # a 3 s timeout during a failover
    b.enqueue(3100, 3200, "k3", EventType.OK, "t3")
    b.enqueue(3200, 3250, "k4", EventType.FAIL)
    b.add(8000, "runner", EventType.INFO, Op.PHASE, {"phase": "drain"})
    b.enqueue(8000, 8010, "k5", EventType.OK, "t5")
    for t, task in ((9000, "t1"), (9001, "t3"), (9002, "t5")):
        b.final(t, task, {"t1": "k1", "t3": "k3", "t5": "k5"}[task])
    report = check(b.events)
    assert report.longest_unavailable_ms == 4800.0  # 3200 -> 8000, the drain start
    assert report.unavailable_windows[1]["length_ms"] == 3100.0
    assert report.valid


def test_faults_are_counted_by_kind():
    b = clean_run()
    for t, fault in ((1, "kill-leader"), (2, "pause"), (3, "kill-leader")):
        b.add(t, "nemesis", EventType.INFO, Op.NEMESIS, {"fault": fault, "phase": "start"})
        b.add(t + 0.5, "nemesis", EventType.INFO, Op.NEMESIS, {"fault": fault, "phase": "stop"})
    b.add(5, "nemesis", EventType.INFO, Op.NEMESIS, {"fault": "kill-leader", "phase": "skipped"},
          "no leader")
    report = check(b.events)
    assert report.faults == {"kill-leader": 2, "pause": 1}
    assert report.faults_skipped == {"kill-leader": 1}
    assert "faults skipped (no leader to aim at): kill-leader=1" in report.render()


def test_history_without_final_read_is_invalid():
    b = Builder().enqueue(0, 10, "k1", EventType.OK, "t1")
    report = check(b.events)
    assert not report.valid
    assert "no final read" in report.problems[0]


def test_operation_never_completed_counts_as_unknown():
    b = Builder().add(0, "p1", EventType.INVOKE, Op.ENQUEUE, {"key": "k1"})
    ops = pair_operations(b.events)
    assert [(op.outcome, op.complete_ms) for op in ops] == [(EventType.INFO, None)]


@pytest.mark.parametrize("events", [
    [(EventType.OK, Op.ENQUEUE)],
    [(EventType.INVOKE, Op.ENQUEUE), (EventType.INVOKE, Op.ENQUEUE)],
    [(EventType.INVOKE, Op.ENQUEUE), (EventType.OK, Op.ACK)],
])
def test_malformed_pairing_is_rejected(events):
    b = Builder()
    for i, (kind, f) in enumerate(events):
        b.add(i, "p1", kind, f, {"key": "k"})
    with pytest.raises(ValueError):
        pair_operations(b.events)
