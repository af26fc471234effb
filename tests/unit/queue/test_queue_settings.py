"""Replicated queue settings: the configure command, its parser, and snapshots carrying them."""

from __future__ import annotations

import json

import pytest

import dqueue.queue as dq
from dqueue.queue.config import QueueConfig, settings_from_plain, settings_to_plain

HOUR_MS = 3_600_000


def enqueue(task_id: str, now_ms: int) -> dq.Enqueue:
    return dq.Enqueue(tasks=(dq.NewTask(id=task_id, type="t", payload=None),), now_ms=now_ms)


def test_settings_round_trip_and_missing_fields_take_defaults() -> None:
    config = QueueConfig(lease_ms=5_000, max_retries=7, backoff_factor=1.5)
    assert settings_from_plain(settings_to_plain(config)) == config
    assert settings_from_plain({"max_retries": 9}) == QueueConfig(max_retries=9)


@pytest.mark.parametrize(("settings", "field"), [
    ({"max_retries": "3"}, "max_retries"),
    ({"lease_ms": True}, "lease_ms"),
    ({"lease_ms": 1.5}, "lease_ms"),
    ({"colour": 1}, "colour"),
    ({"lease_ms": 0}, "lease_ms"),
])
def test_bad_settings_are_refused_naming_the_field(settings: dict, field: str) -> None:
    with pytest.raises(dq.InvalidCommand, match=field) as raised:
        dq.command_from_plain({"op": "configure", "settings": settings})
    assert raised.value.field == "settings"
    with pytest.raises(dq.InvalidCommand):
        dq.command_from_plain({"op": "configure"})


def test_configure_changes_the_defaults_of_later_commands_only() -> None:
    state = dq.QueueState(QueueConfig())
    state.apply(enqueue("before", 1_000), 1)
    command = dq.command_from_plain(
        {"op": "configure", "now_ms": 2_000, "settings": {"max_retries": 7, "lease_ms": 4_000}})
    assert command.to_plain()["settings"]["max_retries"] == 7
    assert state.apply(command, 2) == {"ok": True, "value": {}}
    state.apply(enqueue("after", 3_000), 3)
    assert state.get_task("before")["max_retries"] == 3
    assert state.get_task("after")["max_retries"] == 7
    leased = state.apply(dq.Lease(worker_id="w", max_tasks=1, now_ms=3_000), 4)
    lease = leased["value"]["tasks"][0]["lease"]
    assert lease["expires_at_ms"] == 3_000 + 4_000


def test_snapshot_carries_the_settings_in_force() -> None:
    state = dq.QueueState(QueueConfig())
    state.apply(dq.Configure(settings=QueueConfig(max_retries=5), now_ms=1), 1)
    data = state.snapshot()
    assert json.loads(data)["settings"]["max_retries"] == 5
    other = dq.QueueState(QueueConfig(max_retries=1))
    other.restore(data)
    assert other.config == QueueConfig(max_retries=5)
    assert other.snapshot() == data


def test_snapshot_without_settings_keeps_the_restoring_members_own() -> None:
    document = json.loads(dq.QueueState().snapshot())
    del document["settings"]
    state = dq.QueueState(QueueConfig(max_retries=8))
    state.restore(json.dumps(document).encode())
    assert state.config.max_retries == 8


def test_snapshot_with_bad_settings_is_refused() -> None:
    document = json.loads(dq.QueueState().snapshot())
    document["settings"] = {"max_retries": -1}
    state = dq.QueueState()
    with pytest.raises(ValueError, match="settings"):
        state.restore(json.dumps(document).encode())


@pytest.mark.parametrize("later_retention_ms", [2 * HOUR_MS, HOUR_MS // 2])
def test_a_retention_change_prunes_alike_after_replay_and_after_restore(
        later_retention_ms: int) -> None:
    # A member that replays the log and one that restored a snapshot taken after the change
    # must prune the same tasks at the same time (restore computes prune times from the
    # retention in force, so a configure must too).
    def configure(retention_ms: int, now_ms: int) -> dq.Configure:
        return dq.Configure(settings=QueueConfig(retention_ms=retention_ms), now_ms=now_ms)

    first = [configure(HOUR_MS, 1), enqueue("t1", 1_000),
             dq.Lease(worker_id="w", max_tasks=1, now_ms=2_000),
             dq.Nack(id="t1", worker_id="w", dead_letter=True, now_ms=3_000),
             configure(later_retention_ms, 4_000)]
    later = [dq.Tick(now_ms=3_000 + HOUR_MS // 2 + 1), dq.Tick(now_ms=3_000 + HOUR_MS + 1),
             dq.Tick(now_ms=3_000 + 2 * HOUR_MS + 1)]
    replayed = dq.QueueState(QueueConfig())
    for index, command in enumerate(first, start=1):
        replayed.apply(command, index)
    restored = dq.QueueState(QueueConfig())
    restored.restore(replayed.snapshot())
    for index, command in enumerate(later, start=len(first) + 1):
        replayed.apply(command, index)
        restored.apply(command, index)
        assert replayed.snapshot() == restored.snapshot()
        assert (replayed.get_task("t1") is None) == (restored.get_task("t1") is None)
        pruned = command.now_ms >= 3_000 + later_retention_ms
        assert (replayed.get_task("t1") is None) == pruned


def test_non_finite_settings_are_refused() -> None:
    with pytest.raises(dq.InvalidCommand, match="backoff_factor"):
        dq.command_from_plain({"op": "configure", "settings": {"backoff_factor": float("inf")}})
