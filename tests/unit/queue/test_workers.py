"""The workers table: heartbeats list a worker, missed ones drop it, on cluster time."""

from __future__ import annotations

from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue import fields
from dqueue.queue.commands import InvalidCommand, command_from_plain
from dqueue.queue.log_commands import command_from_log
from dqueue.queue.workers import Heartbeat, WorkerInfo, check_info


def info_plain(worker_id: str = "w1", **changes: Any) -> dict[str, Any]:
    plain = {"worker_id": worker_id, "host": "box-1", "pid": 4242, "transport": "zmq",
             "queues": ["default", "emails"], "types": ["email"], "concurrency": 4,
             "in_flight": 2, "started_at_ms": 1_000, "heartbeat_ms": 1_000}
    plain.update(changes)
    return plain


def beat(worker_id: str = "w1", now_ms: int = 0, leaving: bool = False,
         **changes: Any) -> Heartbeat:
    return Heartbeat(info=check_info(info_plain(worker_id, **changes)), leaving=leaving,
                     now_ms=now_ms)


class Run:
    """One state and the log index of its next command."""

    def __init__(self) -> None:
        self.state = dq.QueueState()
        self.index = 0

    def apply(self, command: Any) -> dict[str, Any]:
        self.index += 1
        outcome = self.state.apply(command, self.index)
        assert outcome is not None
        return outcome

    def workers(self) -> list[str]:
        return [item["worker_id"] for item in self.state.workers.list_plain()]


def test_a_heartbeat_lists_the_worker_with_its_fields() -> None:
    run = Run()
    outcome = run.apply(beat(now_ms=5_000))
    assert outcome["ok"]
    (listed,) = run.state.workers.list_plain()
    assert listed == {**info_plain(), "first_seen_at_ms": 5_000,
                      "last_heartbeat_at_ms": 5_000, "expires_at_ms": 8_000, "heartbeats": 1}
    run.apply(beat(now_ms=6_000, in_flight=0))
    (listed,) = run.state.workers.list_plain()
    assert listed["in_flight"] == 0 and listed["heartbeats"] == 2
    assert listed["first_seen_at_ms"] == 5_000 and listed["expires_at_ms"] == 9_000


def test_a_worker_is_dropped_after_missed_heartbeats_on_cluster_time() -> None:
    run = Run()
    run.apply(beat("w1", now_ms=1_000))
    run.apply(beat("w2", now_ms=1_000, heartbeat_ms=5_000))
    # w1 expires at 1_000 + 3 * 1_000; the state asks to be woken then.
    assert run.state.next_deadline_ms() == 4_000
    run.apply(dq.Tick(now_ms=3_999))
    assert run.workers() == ["w1", "w2"]
    run.apply(dq.Tick(now_ms=4_000))
    assert run.workers() == ["w2"]
    assert run.state.next_deadline_ms() == 16_000
    run.apply(dq.Tick(now_ms=16_000))
    assert run.workers() == []
    assert run.state.next_deadline_ms() is None


def test_heartbeats_push_the_expiry_and_stale_entries_do_not_wake_early() -> None:
    run = Run()
    for now_ms in range(1_000, 10_000, 1_000):
        run.apply(beat(now_ms=now_ms))
    # Each heartbeat replaced the expiry; the next deadline is the live one, not an older one.
    assert run.state.next_deadline_ms() == 12_000
    run.apply(dq.Tick(now_ms=11_999))
    assert run.workers() == ["w1"]


def test_a_leaving_heartbeat_drops_the_worker_at_once() -> None:
    run = Run()
    run.apply(beat("w1", now_ms=1_000))
    assert run.apply(beat("w1", now_ms=1_500, leaving=True)) == {"ok": True,
                                                                  "value": {"worker": None}}
    assert run.workers() == []
    assert run.state.next_deadline_ms() is None
    assert run.apply(beat("w9", now_ms=1_600, leaving=True))["ok"]  # unknown: nothing to do


def test_the_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fields, "MAX_WORKERS", 3)
    run = Run()
    for n in range(3):
        assert run.apply(beat(f"w{n}", now_ms=1_000))["ok"]
    refused = run.apply(beat("w3", now_ms=1_000))
    assert not refused["ok"] and refused["code"] == "invalid_state"
    assert "worker_id" in refused["message"]
    assert run.apply(beat("w0", now_ms=1_100))["ok"]  # a listed worker still beats
    run.apply(dq.Tick(now_ms=10_000))  # all expired: room again
    assert run.apply(beat("w3", now_ms=10_000))["ok"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"worker_id": ""}, "worker_id"),
    ({"worker_id": None}, "worker_id"),
    ({"host": "x" * 254}, "host"),
    ({"host": "a\nb"}, "host"),
    ({"pid": 0}, "pid"),
    ({"pid": True}, "pid"),
    ({"transport": "pigeon"}, "transport"),
    ({"queues": ["bad name"]}, "queues[0]"),
    ({"queues": ["q"] * (fields.MAX_QUEUES + 1)}, "queues"),
    ({"types": "email"}, "types"),
    ({"concurrency": 0}, "concurrency"),
    ({"in_flight": -1}, "in_flight"),
    ({"started_at_ms": -1}, "started_at_ms"),
    ({"heartbeat_ms": 10}, "heartbeat_ms"),
    ({"heartbeat_ms": None}, "heartbeat_ms"),
])
def test_every_field_is_checked_and_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        command_from_plain({"op": "worker_heartbeat", **info_plain(**changes)})
    assert caught.value.field == field


def test_the_plain_form_round_trips_through_the_parser_and_the_log() -> None:
    command = beat(now_ms=7_000, leaving=True)
    plain = command.to_plain()
    assert command_from_plain(plain) == command
    assert command_from_log(plain) == command
    with pytest.raises(InvalidCommand) as caught:
        command_from_plain({**plain, "leaving": "yes"})
    assert caught.value.field == "leaving"
    with pytest.raises(InvalidCommand) as caught:
        command_from_plain({**plain, "colour": "red"})
    assert caught.value.field == "colour"
    info = WorkerInfo(worker_id="w", host="h", pid=1, started_at_ms=0, heartbeat_ms=1_000)
    assert check_info(info.to_plain()) == info


def test_the_table_is_in_snapshots_and_restores_equal() -> None:
    run = Run()
    run.apply(beat("w2", now_ms=1_000))
    run.apply(beat("w1", now_ms=1_500, heartbeat_ms=2_000))
    run.apply(beat("w2", now_ms=2_000))
    data = run.state.snapshot()
    restored = dq.QueueState()
    restored.restore(data)
    assert restored.workers.list_plain() == run.state.workers.list_plain()
    assert restored.snapshot() == data
    assert restored.next_deadline_ms() == run.state.next_deadline_ms() == 5_000
    # The restored member drops the same workers at the same time as the one that replayed.
    for state in (run.state, restored):
        state.apply(dq.Tick(now_ms=5_000), run.index + 1)
        assert [w["worker_id"] for w in state.workers.list_plain()] == ["w1"]
    assert restored.snapshot() == run.state.snapshot()


def test_a_state_without_workers_writes_no_workers_key() -> None:
    run = Run()
    run.apply(beat(now_ms=1_000))
    run.apply(dq.Tick(now_ms=100_000))
    assert b'"workers"' not in run.state.snapshot()


@pytest.mark.parametrize("entries", [
    "nope",
    [{"worker_id": "w1"}],
    [{**info_plain(), "first_seen_at_ms": 0, "last_heartbeat_at_ms": 0, "expires_at_ms": -1,
      "heartbeats": 1}],
    [{**info_plain(pid=0), "first_seen_at_ms": 0, "last_heartbeat_at_ms": 0,
      "expires_at_ms": 1, "heartbeats": 1}],
    [{**info_plain(), "first_seen_at_ms": 0, "last_heartbeat_at_ms": 0, "expires_at_ms": 1,
      "heartbeats": 1}] * 2,
])
def test_a_malformed_snapshot_table_is_refused(entries: Any) -> None:
    book = dq.QueueState().workers
    with pytest.raises(ValueError):
        book.load_snapshot(entries)
