"""Schedules in the state machine: commands, firing on cluster time, catch-up, snapshots."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dqueue.queue import schedule_admin
from dqueue.queue.commands import command_from_plain
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.state import QueueState

EVERY = {"every_seconds": 1, "task": {"type": "tick.job", "payload": {"n": 1}}}


class Driver:
    """A state and the index of its next command."""

    def __init__(self) -> None:
        self.state = QueueState()
        self.index = 0

    def apply(self, plain: dict[str, Any], now_ms: int) -> dict[str, Any]:
        self.index += 1
        outcome = self.state.apply(command_from_plain({**plain, "now_ms": now_ms}), self.index)
        assert outcome is not None
        return outcome

    def tick(self, now_ms: int) -> None:
        assert self.apply({"op": "tick"}, now_ms)["ok"]

    def put(self, name: str, spec: dict[str, Any], now_ms: int) -> dict[str, Any]:
        return self.apply({"op": "put_schedule", "name": name, "schedule": spec}, now_ms)

    def slots(self, name: str) -> list[int]:
        prefix = f"schedule.{name}."
        return sorted(int(task_id[len(prefix):]) for task_id in self.state._tasks
                      if task_id.startswith(prefix))


def test_every_slot_fires_once_on_cluster_time() -> None:
    driver = Driver()
    assert driver.put("beat", EVERY, 1_500)["value"]["created"] is True
    for now_ms in (1_700, 2_000, 2_000, 2_900, 4_200, 4_300):
        driver.tick(now_ms)
    assert driver.slots("beat") == [2_000, 3_000, 4_000]
    task = driver.state.get_task("schedule.beat.3000")
    assert task is not None
    assert task["type"] == "tick.job" and task["payload"] == {"n": 1}
    assert task["idempotency_key"] == "schedule.beat.3000"
    record = schedule_admin.get_schedule(driver.state, "beat")
    assert record is not None
    assert record["last_slot_ms"] == 4_000 and record["next_slot_ms"] == 5_000
    assert record["fired"] == 3 and record["last_error"] is None
    assert driver.state.next_deadline_ms() == 5_000


@pytest.mark.parametrize(("catch_up", "expected"), [
    ("skip", [2_000, *range(50_000, 60_001, 1_000)]),
    ("latest", [2_000, 49_000, *range(50_000, 60_001, 1_000)]),
])
def test_downtime_skips_or_runs_latest_once(catch_up: str, expected: list[int]) -> None:
    driver = Driver()
    driver.put("beat", {**EVERY, "catch_up": catch_up}, 1_500)
    driver.tick(2_000)
    driver.tick(60_000)  # 58 s without a command: slots more than 10 s late are missed
    assert driver.slots("beat") == expected
    record = schedule_admin.get_schedule(driver.state, "beat")
    assert record is not None and record["last_missed_slot_ms"] == 49_000


def test_cron_schedule_in_a_zone() -> None:
    driver = Driver()
    spec = {"cron": "30 9 * * *", "timezone": "Europe/Paris", "task": {"type": "daily"}}
    day_ms = 86_400_000
    start_ms = 20_454 * day_ms  # 2026-01-01 00:00 UTC
    driver.put("daily", spec, start_ms)
    driver.tick(start_ms + 8 * 3_600_000 + 30 * 60_000)  # 09:30 in Paris (UTC+1)
    driver.tick(start_ms + day_ms + 8 * 3_600_000 + 30 * 60_000 + 5)
    assert driver.slots("daily") == [start_ms + 8 * 3_600_000 + 30 * 60_000,
                                     start_ms + day_ms + 8 * 3_600_000 + 30 * 60_000]


def test_pause_skips_slots_and_resume_continues_after_now() -> None:
    driver = Driver()
    driver.put("beat", EVERY, 1_500)
    driver.tick(2_000)
    assert driver.apply({"op": "pause_schedule", "name": "beat"}, 2_100)["ok"]
    assert driver.state.next_deadline_ms() is None
    driver.tick(5_000)
    assert driver.apply({"op": "resume_schedule", "name": "beat"}, 5_500)["ok"]
    driver.tick(6_000)
    assert driver.slots("beat") == [2_000, 6_000]


def test_put_again_replaces_and_never_refires() -> None:
    driver = Driver()
    driver.put("beat", EVERY, 1_500)
    driver.tick(3_000)
    outcome = driver.put("beat", {**EVERY, "every_seconds": 2}, 3_000)
    assert outcome["value"]["created"] is False
    driver.tick(6_000)
    assert driver.slots("beat") == [2_000, 3_000, 4_000, 6_000]


def test_delete_and_not_found() -> None:
    driver = Driver()
    driver.put("beat", EVERY, 1_500)
    assert driver.apply({"op": "delete_schedule", "name": "beat"}, 1_600)["ok"]
    driver.tick(5_000)
    assert driver.slots("beat") == []
    for op in ("delete_schedule", "pause_schedule", "resume_schedule"):
        outcome = driver.apply({"op": op, "name": "beat"}, 5_000)
        assert outcome["code"] == schedule_admin.SCHEDULE_NOT_FOUND


def test_missing_queue_is_refused_then_recorded_when_deleted_later() -> None:
    driver = Driver()
    spec = {"every_seconds": 1, "task": {"type": "t", "queue": "emails"}}
    assert driver.put("beat", spec, 1_000)["code"] == "queue_not_found"
    assert driver.apply({"op": "create_queue", "name": "emails"}, 1_000)["ok"]
    assert driver.put("beat", spec, 1_000)["ok"]
    driver.tick(2_000)
    assert driver.apply({"op": "delete_queue", "name": "emails"}, 2_100)["ok"]
    driver.tick(3_000)
    record = schedule_admin.get_schedule(driver.state, "beat")
    assert record is not None and record["last_error"].startswith("queue_not_found")
    assert record["last_slot_ms"] == 3_000


@pytest.mark.parametrize(("spec", "field"), [
    ({"task": {"type": "t"}}, "schedule.cron"),
    ({"cron": "* * * * *", "every_seconds": 5, "task": {"type": "t"}}, "schedule.cron"),
    ({"cron": "61 * * * *", "task": {"type": "t"}}, "schedule.cron"),
    ({"cron": "* * * * *", "timezone": "Nowhere/City", "task": {"type": "t"}},
     "schedule.timezone"),
    ({"every_seconds": 5, "timezone": "UTC", "task": {"type": "t"}}, "schedule.timezone"),
    ({"every_seconds": 0, "task": {"type": "t"}}, "schedule.every_seconds"),
    ({"every_seconds": True, "task": {"type": "t"}}, "schedule.every_seconds"),
    ({"every_seconds": 5}, "schedule.task"),
    ({"every_seconds": 5, "task": {}}, "schedule.task.type"),
    ({"every_seconds": 5, "task": {"type": "t", "queue": "no spaces"}}, "schedule.task.queue"),
    ({"every_seconds": 5, "task": {"type": "t", "priority": "high"}},
     "schedule.task.priority"),
    ({"every_seconds": 5, "task": {"type": "t", "max_retries": -1}},
     "schedule.task.max_retries"),
    ({"every_seconds": 5, "task": {"type": "t", "extra": 1}}, "schedule.task.extra"),
    ({"every_seconds": 5, "task": {"type": "t"}, "catch_up": "all"}, "schedule.catch_up"),
    ({"every_seconds": 5, "task": {"type": "t"}, "paused": "yes"}, "schedule.paused"),
    ({"every_seconds": 5, "task": {"type": "t"}, "color": "red"}, "schedule.color"),
])
def test_bad_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        command_from_plain({"op": "put_schedule", "name": "s", "schedule": spec})
    assert caught.value.field == field


def test_bad_name_is_refused() -> None:
    with pytest.raises(InvalidCommand) as caught:
        command_from_plain({"op": "delete_schedule", "name": "a b"})
    assert caught.value.field == "name"


def test_plain_round_trip() -> None:
    plain = {"op": "put_schedule", "name": "s", "now_ms": 5,
             "schedule": {"cron": "0 * * * *", "timezone": "Asia/Tokyo",
                          "every_seconds": None, "paused": True, "catch_up": "latest",
                          "task": {"queue": "default", "type": "t", "payload": [1],
                                   "priority": 3, "max_retries": 2}}}
    assert command_from_plain(plain).to_plain() == plain


def test_snapshot_without_schedules_has_no_key() -> None:
    driver = Driver()
    driver.tick(1_000)
    assert "schedules" not in json.loads(driver.state.snapshot())


def test_exactly_once_across_a_restore() -> None:
    """A member restored from a snapshot mid-way fires what one that never restored fires."""
    reference, restored = Driver(), Driver()
    history = [(1_000, {"op": "put_schedule", "name": "beat", "schedule": EVERY}),
               (1_000, {"op": "put_schedule", "name": "late",
                        "schedule": {**EVERY, "catch_up": "latest", "every_seconds": 3}})]
    history += [(2_000 + 700 * step, {"op": "tick"}) for step in range(6)]
    history += [(40_000, {"op": "tick"}), (41_000, {"op": "tick"})]
    for position, (now_ms, plain) in enumerate(history):
        reference.apply(plain, now_ms)
        restored.apply(plain, now_ms)
        if position in (3, 8):
            data = restored.state.snapshot()
            fresh = QueueState()
            fresh.restore(data)
            assert fresh.snapshot() == data
            restored.state = fresh
    assert restored.state.snapshot() == reference.state.snapshot()
    beat = reference.slots("beat")
    assert len(beat) == len(set(beat))
    # At 40 s the slots 6 s to 29 s are more than 10 s late: skipped; 30 s to 41 s fire.
    assert beat == [2_000, 3_000, 4_000, 5_000, *range(30_000, 41_001, 1_000)]
    assert restored.slots("late") == reference.slots("late")


@pytest.mark.parametrize("mutate", [
    lambda doc: doc["schedules"].append(doc["schedules"][0]),
    lambda doc: doc["schedules"][0].update(last_slot_ms=-1),
    lambda doc: doc["schedules"][0].pop("fired"),
    lambda doc: doc["schedules"][0]["spec"].update(every_seconds=0),
    lambda doc: doc.update(schedules={}),
])
def test_malformed_snapshot_schedules_are_refused(mutate: Any) -> None:
    driver = Driver()
    driver.put("beat", EVERY, 1_500)
    document = json.loads(driver.state.snapshot())
    mutate(document)
    with pytest.raises(ValueError, match="schedule"):
        QueueState().restore(json.dumps(document).encode())
