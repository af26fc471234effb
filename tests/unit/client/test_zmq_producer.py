"""ZmqProducer against a real worker gateway in front of a fake Raft process (FakeRaft)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dqueue.api.gateway import WorkerGateway
from dqueue.client import ZmqProducer
from dqueue.client.errors import InvalidRequest, NoLeader, QueueNotFound, Unavailable
from dqueue.client.http_client import RetryPolicy
from dqueue.testing import wait_for
from tests.unit.api.test_gateway import Harness, running


@pytest.fixture
def harness(tmp_path) -> Iterator[Harness]:
    with running(Harness(tmp_path)) as h:
        yield h


def producer(h: Harness, **kwargs: Any) -> ZmqProducer:
    assert h.gateway.endpoint
    kwargs.setdefault("retry", RetryPolicy(deadline_s=2.0, backoff_base_s=0.01))
    return ZmqProducer(h.gateway.endpoint, timeout_s=5, **kwargs)


def enqueue_commands(h: Harness) -> list[dict[str, Any]]:
    return [cmd for cmd in h.raft.commands if cmd["op"] == "enqueue"]


def test_enqueue_returns_the_committed_task(harness):
    with producer(harness) as p:
        task = p.enqueue("email", {"to": "a"}, priority=3, max_retries=2, delay=1.5)
    assert task.type == "email" and task.payload == {"to": "a"} and task.priority == 3
    assert task.max_retries == 2 and not task.duplicate
    assert task.idempotency_key and task.idempotency_key.startswith("auto-")
    [cmd] = enqueue_commands(harness)
    [sent] = cmd["tasks"]
    assert sent["delay_ms"] == 1500 and sent["id"] == task.id
    assert harness.queue.get(task.id)["status"] == "pending"


def test_a_callers_key_seen_before_is_a_duplicate(harness):
    with producer(harness) as p:
        first = p.enqueue("email", idempotency_key="k1")
        again = p.enqueue("email", idempotency_key="k1")
    assert again.id == first.id and again.duplicate and not first.duplicate


def test_enqueue_many_sends_chunks_of_1000_in_order(harness):
    with producer(harness) as p:
        tasks = p.enqueue_many({"type": "t", "payload": i} for i in range(1_500))
    assert [t.payload for t in tasks] == list(range(1_500))
    assert [len(cmd["tasks"]) for cmd in enqueue_commands(harness)] == [1_000, 500]


def test_concurrent_enqueues_within_the_linger_share_one_message(harness):
    n = 8
    results: dict[int, Any] = {}
    with producer(harness, linger_ms=300) as p:
        barrier = threading.Barrier(n)

        def call(i: int) -> None:
            barrier.wait()
            results[i] = p.enqueue("t", i)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert p.messages_sent == 1
    assert {i: task.payload for i, task in results.items()} == {i: i for i in range(n)}
    assert len({task.id for task in results.values()}) == n
    [cmd] = enqueue_commands(harness)
    assert len(cmd["tasks"]) == n


def test_a_bad_task_in_a_coalesced_batch_fails_only_its_caller(harness):
    outcomes: dict[str, Any] = {}
    with producer(harness, linger_ms=300) as p:
        def call(name: str, priority: Any) -> None:
            try:
                outcomes[name] = p.enqueue("t", name, priority=priority)
            except InvalidRequest as exc:
                outcomes[name] = exc

        threads = [threading.Thread(target=call, args=("good", 1)),
                   threading.Thread(target=call, args=("bad", "high"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert outcomes["good"].payload == "good"
    assert isinstance(outcomes["bad"], InvalidRequest)
    assert outcomes["bad"].field == "priority"


def test_enqueue_many_refusal_names_the_item(harness):
    with producer(harness) as p, pytest.raises(InvalidRequest) as info:
        p.enqueue_many([{"type": "t"}, {"type": "t", "max_retries": -1}])
    assert info.value.field == "tasks[1].max_retries"
    assert enqueue_commands(harness) == []


def test_unknown_queue_is_typed(harness):
    with producer(harness) as p, pytest.raises(QueueNotFound):
        p.enqueue("t", queue="nope")


def test_no_leader_is_retried_with_the_same_key_until_it_passes(harness):
    refusals = [2]

    def script(body: dict[str, Any]) -> list[tuple[bytes, Any]] | None:
        if body["cmd"]["op"] == "enqueue" and refusals[0] > 0:
            refusals[0] -= 1
            return [(b"err", {"rid": body["rid"], "code": "no_leader", "message": "election"})]
        return None

    harness.raft.script = script
    with producer(harness) as p:
        task = p.enqueue("t", "x")
    keys = {cmd["tasks"][0]["idempotency_key"] for cmd in enqueue_commands(harness)}
    assert len(enqueue_commands(harness)) == 3 and keys == {task.idempotency_key}


def test_no_leader_past_the_deadline_raises(harness):
    harness.raft.script = lambda body: [(b"err", {"rid": body["rid"], "code": "no_leader",
                                                  "message": "election"})]
    with producer(harness, retry=RetryPolicy(deadline_s=0.3, backoff_base_s=0.01)) as p, \
            pytest.raises(NoLeader):
        p.enqueue("t")


def test_a_silent_gateway_is_left_for_the_next_address(harness):
    # Nothing listens on the first address: requests sent there are never answered.
    assert harness.gateway.endpoint
    with ZmqProducer(["tcp://127.0.0.1:9", harness.gateway.endpoint], timeout_s=0.5,
                     retry=RetryPolicy(deadline_s=5.0)) as p:
        task = p.enqueue("t", "moved")
    assert task.payload == "moved"
    assert harness.queue.get(task.id) is not None


def test_enqueue_after_close_is_unavailable(harness):
    p = producer(harness)
    p.close()
    with pytest.raises(Unavailable):
        p.enqueue("t")


def test_gateway_refuses_bad_producer_bodies_naming_the_field(harness):
    with harness.client() as client:
        for kind, body, field in [
            (b"enqueue", {}, "type"),
            (b"enqueue", {"type": "t", "delay_seconds": 1}, "delay_seconds"),
            (b"enqueue", {"type": "t", "delay_ms": -1}, "delay_ms"),
            (b"enqueue_batch", {"tasks": []}, "tasks"),
            (b"enqueue_batch", {"tasks": [{"type": "t"}, 3]}, "tasks[1]"),
            (b"enqueue_batch", {"tasks": [{"type": "t", "queue": "a b"}]}, "tasks[0].queue"),
        ]:
            client._send(kind, dict(body))
            reply = wait_for(lambda: client.recv(50))
            assert isinstance(reply.error, InvalidRequest), body
            assert reply.error.field == field, body
    assert enqueue_commands(harness) == []


def test_a_body_over_the_nodes_limit_is_refused(tmp_path):
    h = Harness(tmp_path)
    h.config = dataclasses.replace(h.config, max_body_bytes=2_000)
    h.gateway = WorkerGateway(h.config, CollectorRegistry())
    h.thread = threading.Thread(target=h.gateway.run, daemon=True)
    with running(h), producer(h) as p:
        assert p.enqueue("t", "x" * 1_000).payload == "x" * 1_000
        with pytest.raises(InvalidRequest) as info:
            p.enqueue("t", "x" * 5_000)
    assert info.value.code == "body_too_large" and info.value.field == "body"
    assert len(enqueue_commands(h)) == 1
