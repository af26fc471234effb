"""The producer requests of the worker gateway: validation and the ``enqueued`` reply."""

from __future__ import annotations

import pytest

from dqueue.api.gateway_producer import enqueue_command_of, enqueued_body
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


def test_a_leased_duplicate_shows_no_token():
    body = enqueued_body(7, {"tasks": [{"id": "1", "lease": {"worker_id": "w", "token": "s",
                                                             "expires_at_ms": 5}}],
                             "duplicates": [True]})
    assert body == {"rid": 7, "tasks": [{"id": "1", "duplicate": True,
                                         "lease": {"expires_at_ms": 5}}]}
