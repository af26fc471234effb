"""Queue events reach the node's metrics and logs."""

from __future__ import annotations

import logging

import pytest

from dqueue.node.queue_events import (
    MAX_QUEUE_LABELS,
    MAX_TYPE_LABELS,
    SnapshotCheck,
    bounded_labels,
    log_queue_events,
    queue_event_metrics,
)
from dqueue.queue import QueueConfig, QueueState, command_from_plain


def _apply(state: QueueState, index: int, plain: dict) -> dict:
    return state.apply(command_from_plain(plain), index)


def _enqueue(task_id: str, task_type: str, now_ms: int) -> dict:
    return {"op": "enqueue", "now_ms": now_ms, "tasks": [{"id": task_id, "type": task_type}]}


def test_counters_by_type_and_logged_expiry_and_dead_letter(caplog):
    state = QueueState(QueueConfig(max_retries=0))  # no retry: the first failure is final
    assert _apply(state, 1, _enqueue("a", "email", 1_000))["ok"]
    lease = {"op": "lease", "now_ms": 1_000, "worker_id": "w", "max_tasks": 1, "lease_ms": 100}
    assert _apply(state, 2, lease)["value"]["tasks"]
    assert _apply(state, 3, {"op": "tick", "now_ms": 5_000})["ok"]  # the lease expired

    figures = queue_event_metrics(state)
    assert figures["dqueue_queue_tasks_enqueued_total"] == {
        "by": ["queue", "type"], "values": {"default": {"email": 1}}}
    assert figures["dqueue_queue_tasks_leased_total"]["values"] == {"default": {"email": 1}}
    assert figures["dqueue_queue_tasks_expired_total"]["values"] == {"default": {"email": 1}}
    assert figures["dqueue_queue_tasks_dead_lettered_total"]["values"] == {
        "default": {"email": 1}}
    assert figures["dqueue_queue_tasks_acked_total"]["values"] == {}

    logger = logging.getLogger("test.queue_events")
    with caplog.at_level(logging.INFO, logger="test.queue_events"):
        log_queue_events(state, logger)
        log_queue_events(state, logger)  # drained: nothing logged twice
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text.count("task_expired") == 1 and text.count("task_dead_lettered") == 1
    assert "a" in text


def test_type_labels_are_bounded():
    state = QueueState(QueueConfig())
    extra = 5
    for n in range(MAX_TYPE_LABELS + extra):
        assert _apply(state, n + 1, _enqueue(f"t{n}", f"type{n:04d}", 1_000))["ok"]
    values = queue_event_metrics(state)["dqueue_queue_tasks_enqueued_total"]["values"]
    assert list(values) == ["default"]
    assert len(values["default"]) == MAX_TYPE_LABELS + 1
    assert values["default"]["_other"] == extra
    assert sum(values["default"].values()) == MAX_TYPE_LABELS + extra


def test_every_event_is_counted_in_the_queue_of_its_task():
    state = QueueState(QueueConfig())
    put = {"op": "create_queue", "now_ms": 1_000, "name": "mail", "settings": {}}
    assert _apply(state, 1, put)["ok"], "queue creation failed"
    enqueue = {"op": "enqueue", "now_ms": 1_000,
               "tasks": [{"id": "m", "type": "email", "queue": "mail"},
                         {"id": "d", "type": "email"}]}
    assert _apply(state, 2, enqueue)["ok"]
    lease = {"op": "lease", "now_ms": 1_000, "worker_id": "w", "max_tasks": 1,
             "queues": ["mail"]}
    task = _apply(state, 3, lease)["value"]["tasks"][0]
    ack = {"op": "ack", "now_ms": 1_000, "id": task["id"], "worker_id": "w",
           "token": task["lease"]["token"]}
    assert _apply(state, 4, ack)["ok"]
    figures = queue_event_metrics(state)
    assert figures["dqueue_queue_tasks_enqueued_total"]["values"] == {
        "default": {"email": 1}, "mail": {"email": 1}}
    assert figures["dqueue_queue_tasks_leased_total"]["values"] == {"mail": {"email": 1}}
    assert figures["dqueue_queue_tasks_acked_total"]["values"] == {"mail": {"email": 1}}
    assert state.event_counts()["enqueued"] == {"email": 2}  # the sum over queues


def test_queue_labels_and_series_are_bounded_and_totals_kept():
    by_queue = {f"q{n:03d}": {"a": 1, "b": 2} for n in range(MAX_QUEUE_LABELS + 3)}
    out = bounded_labels(by_queue)
    assert len(out) == MAX_QUEUE_LABELS + 1
    assert out["_other"] == {"a": 3, "b": 6}
    assert out["q000"] == {"a": 1, "b": 2}
    # Past the series bound a queue keeps its sum under type "_other".
    few = bounded_labels({"x": {"a": 1, "b": 2}, "y": {"a": 4, "b": 8}}, max_series=3)
    assert few == {"x": {"a": 1, "b": 2}, "y": {"a": 4, "_other": 8}}
    capped = bounded_labels({"x": {"a": 1, "b": 2, "c": 3}}, max_types=1)
    assert capped == {"x": {"a": 1, "_other": 5}}


def test_restore_queue_restores_and_leaves_the_collector_as_it_was():
    import gc

    from dqueue.node.queue_events import restore_queue

    source = QueueState(QueueConfig())
    assert _apply(source, 1, _enqueue("a", "email", 1_000))["ok"]
    target = QueueState(QueueConfig())
    assert gc.isenabled()
    restore_queue(target, source.snapshot())
    assert gc.isenabled()
    assert target.get_task("a")["type"] == "email"
    assert target.snapshot() == source.snapshot()
    gc.unfreeze()


def test_snapshots_are_taken_and_restored_with_the_collector_paused():
    import gc

    from dqueue.node.queue_events import restore_queue, snapshot_queue

    class Watched(QueueState):
        """Records whether the collector ran while the state built or loaded a snapshot."""

        enabled: list[bool]

        def snapshot(self) -> bytes:
            self.enabled.append(gc.isenabled())
            return super().snapshot()

        def restore(self, data: bytes) -> None:
            self.enabled.append(gc.isenabled())
            super().restore(data)

    state = Watched(QueueConfig())
    state.enabled = []
    assert _apply(state, 1, _enqueue("a", "email", 1_000))["ok"]
    data = snapshot_queue(state)
    assert data == QueueState.snapshot(state)
    restore_queue(state, data)
    with pytest.raises(ValueError):
        restore_queue(state, b"garbage")
    assert state.enabled == [False, False, False]
    assert gc.isenabled()  # as it was before each call
    gc.unfreeze()


def test_snapshot_check_refuses_what_does_not_restore_and_keeps_what_does(monkeypatch):
    source = QueueState()
    assert _apply(source, 1, _enqueue("a", "email", 1_000))["ok"]
    data = source.snapshot()
    check = SnapshotCheck(QueueConfig)
    for garbage in (b"", b"\x00garbage", b'{"format": 2}', data[:-3]):
        assert check(garbage) is False
    assert check(data) is True
    # The install takes the scratch state of exactly these bytes: no second decode.
    decodes: list[bytes] = []
    real_restore = QueueState.restore
    monkeypatch.setattr(QueueState, "restore",
                        lambda self, d: (decodes.append(d), real_restore(self, d))[1])
    target = QueueState()
    assert _apply(target, 1, _enqueue("other", "sms", 1_000))["ok"]
    check.install(target, data)
    assert decodes == []
    assert target.get_task("a") is not None and target.get_task("other") is None
    assert target.snapshot() == data
    # Other bytes (or the same bytes once more) are decoded as before.
    check.install(target, data)
    assert decodes == [data]
