"""The producer requests of the worker gateway: validation, holding, and splitting outcomes."""

from __future__ import annotations

import pytest

from dqueue.api.gateway_producer import (
    EnqueueHold,
    enqueue_command_of,
    enqueued_body,
    split_outcome,
)
from dqueue.api.worker_requests import RequestError
from dqueue.protocol.kinds import WorkerKind


def test_enqueue_body_becomes_the_http_commands_task():
    cmd = enqueue_command_of(WorkerKind.ENQUEUE, {"rid": 1, "type": "t", "payload": [1],
                                                  "priority": 2, "delay_ms": 50,
                                                  "queue": "q"}, 10, 1_000)
    [task] = cmd["tasks"]
    assert cmd["op"] == "enqueue" and len(task.pop("id")) == 32
    assert task == {"type": "t", "payload": [1], "priority": 2, "delay_ms": 50, "queue": "q"}


def test_batch_items_are_named_in_errors():
    with pytest.raises(RequestError) as info:
        enqueue_command_of(WorkerKind.ENQUEUE_BATCH,
                           {"tasks": [{"type": "t"}, {"type": "t", "rid": 3}]}, 10, 1_000)
    assert (info.value.code, info.value.field) == ("unknown_field", "tasks[1].rid")
    with pytest.raises(RequestError) as info:
        enqueue_command_of(WorkerKind.ENQUEUE_BATCH, {"tasks": [{}] * 1_001}, 10, 10**9)
    assert info.value.field == "tasks"


def test_hold_sends_a_lone_request_at_once_and_the_rest_together_after_the_answer():
    hold = EnqueueHold(max_tasks=5, max_bytes=100)
    hold.hold("a", 1, 10)
    assert hold.may_go() and hold.take() == ["a"]
    hold.command_sent()
    for name, tasks in [("b", 2), ("c", 2), ("d", 2)]:
        hold.hold(name, tasks, 10)
    assert not hold.may_go()
    hold.command_done()
    assert hold.may_go() and hold.take() == ["b", "c"]  # d would pass max_tasks
    assert hold.take() == ["d"]
    hold.hold("big", 1, 500)
    assert hold.take() == ["big"]  # alone over max_bytes: still sent


def test_split_outcome_gives_each_request_its_tasks():
    outcome = {"ok": True, "value": {"tasks": [{"id": "1"}, {"id": "2"}, {"id": "3"}],
                                     "duplicates": [False, True, False]}}
    parts = split_outcome(outcome, [1, 2])
    assert parts == [{"ok": True, "value": {"tasks": [{"id": "1"}], "duplicates": [False]}},
                     {"ok": True, "value": {"tasks": [{"id": "2"}, {"id": "3"}],
                                            "duplicates": [True, False]}}]
    assert split_outcome({"ok": False, "code": "queue_full"}, [1, 2]) is None
    unreadable = split_outcome(outcome, [1, 1])
    assert unreadable is not None
    assert [enqueued_body(1, part["value"]) for part in unreadable] == [None, None]


def test_a_leased_duplicate_shows_no_token():
    body = enqueued_body(7, {"tasks": [{"id": "1", "lease": {"worker_id": "w", "token": "s",
                                                             "expires_at_ms": 5}}],
                             "duplicates": [True]})
    assert body == {"rid": 7, "tasks": [{"id": "1", "duplicate": True,
                                         "lease": {"expires_at_ms": 5}}]}
