"""A queue's max_message_bytes over HTTP enqueue and batch (dqueue/api/message_size.py)."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.api.message_size import QueueLimits, payload_message_bytes, too_large
from dqueue.api.sqs_messages import _message_parts


def create(client: Any, name: str, **settings: Any) -> None:
    resp = client.simulate_put(f"/queues/{name}", json=settings)
    assert resp.status_code == 201, resp.json


def test_an_enqueue_larger_than_its_queue_limit_is_refused_naming_the_payload(client, fake):
    create(client, "small", max_message_bytes=1_024)
    fits = "x" * 1_024  # a string payload is its own SQS body: exactly the limit fits
    assert client.simulate_post("/tasks", json={"type": "t", "queue": "small",
                                                "payload": fits}).status_code == 201
    before = len(fake.commands)
    resp = client.simulate_post("/tasks", json={"type": "t", "queue": "small",
                                                "payload": fits + "y"})
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "payload"
    assert "1025 bytes" in resp.json["error"]["message"]
    assert len(fake.commands) == before  # nothing was proposed
    # The default queue sets no limit: the same payload goes there.
    assert client.simulate_post("/tasks", json={"type": "t", "payload": fits + "y"}
                                ).status_code == 201


def test_a_batch_names_the_first_task_over_its_queue_limit(client, fake):
    create(client, "small", max_message_bytes=1_024)
    big = {"k": "v" * 1_100}
    before = len(fake.commands)
    resp = client.simulate_post("/tasks/batch", json={"tasks": [
        {"type": "t", "payload": big},  # default queue: no limit of its own
        {"type": "t", "queue": "small", "payload": {"k": 1}},
        {"type": "t", "queue": "small", "payload": big}]})
    assert resp.status_code == 400 and resp.json["error"]["field"] == "tasks[2].payload"
    assert len(fake.commands) == before  # the whole batch is refused, as for any bad task


@pytest.mark.parametrize("payload", ["plain ünïcode", {"a": [1, 2.5, None, "é"]}, None, 7,
                                     [True, {"b": "c"}]])
def test_a_payload_is_measured_as_the_sqs_body_it_is_received_as(payload):
    body, attributes, _ = _message_parts({"type": "t", "payload": payload})
    assert attributes == {}
    assert payload_message_bytes(payload) == len(body.encode("utf-8"))


def test_limits_are_read_once_per_ttl_and_missing_queues_have_none():
    reads: list[str] = []
    views = {"q": {"settings": {"max_message_bytes": 2_048}},
             "open": {"settings": {"max_message_bytes": 0}}}

    def read(query: dict[str, Any]) -> Any:
        reads.append(query["name"])
        return views.get(query["name"])

    limits = QueueLimits(read, ttl_s=3_600.0, max_queues=2)
    assert limits.max_message_bytes("q") == 2_048
    assert limits.max_message_bytes("q") == 2_048
    assert reads == ["q"]
    assert limits.max_message_bytes("open") == 0 and limits.max_message_bytes("gone") == 0
    assert reads == ["q", "open", "gone"]  # the cache was full: emptied, not grown
    assert limits.max_message_bytes("gone") == 0 and reads.count("gone") == 1
    expired = QueueLimits(read, ttl_s=0.0)
    expired.max_message_bytes("q")
    expired.max_message_bytes("q")
    assert reads.count("q") == 3
    assert too_large(11, 10) and not too_large(10, 10) and not too_large(10**9, 0)
