"""The worker gateway between a real DEALER worker and a fake Raft process on IPC."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import zmq
from prometheus_client import CollectorRegistry

from dqueue.api.ack_hold import MAX_ACK_HOLD_MS, AckGroup
from dqueue.api.gateway import WorkerGateway, bind_endpoint
from dqueue.client.errors import InvalidRequest, LeaseConflict, NoLeader
from dqueue.client.zmq_client import ZmqWorkerClient
from dqueue.config import NodeConfig
from dqueue.protocol import wire
from dqueue.testing import wait_for
from tests.unit.client.fakes import FakeRaft, ServedQueue


class Harness:
    def __init__(self, tmp_path, liveness_ms: int = 5_000, ack_window_ms: int = 2) -> None:
        self.config = NodeConfig(id="n1", data_dir=str(tmp_path), worker_addr="127.0.0.1:0",
                                 request_timeout_ms=500, max_wait_ms=20_000)
        self.registry = CollectorRegistry()
        self.queue = ServedQueue()
        self.raft = FakeRaft(self.config.ipc_endpoint(), self.queue)
        self.gateway = WorkerGateway(self.config, self.registry, lease_slice_ms=200,
                                     liveness_ms=liveness_ms, ack_window_ms=ack_window_ms)
        self.thread = threading.Thread(target=self.gateway.run, daemon=True)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def client(self, **kwargs: Any) -> ZmqWorkerClient:
        assert self.gateway.endpoint
        return ZmqWorkerClient(self.gateway.endpoint, timeout_s=5, retry_deadline_s=0.2,
                               **kwargs)


@contextmanager
def running(h: Harness) -> Iterator[Harness]:
    with h.raft:
        h.thread.start()
        assert h.gateway.ready.wait(5)
        try:
            yield h
        finally:
            h.gateway.stop()
            h.thread.join(5)
    assert not h.thread.is_alive()


@pytest.fixture
def harness(tmp_path) -> Iterator[Harness]:
    with running(Harness(tmp_path)) as h:
        yield h


@pytest.fixture
def slow_acks(tmp_path) -> Iterator[Harness]:
    """A gateway holding acks for up to 1.5 s, so that acks sent together surely share one."""
    with running(Harness(tmp_path, ack_window_ms=1_500)) as h:
        yield h


def test_bind_endpoint_forms():
    assert bind_endpoint(":9191") == "tcp://*:9191"
    assert bind_endpoint("127.0.0.1:0") == "tcp://127.0.0.1:*"
    assert bind_endpoint("tcp://127.0.0.1:5") == "tcp://127.0.0.1:5"


def test_lease_ack_round_trip(harness):
    harness.queue.enqueue("email", {"to": "a"})
    with harness.client(worker_id="w1") as client:
        tasks = client.lease(5, types=["email"], lease_seconds=10)
        assert [t.type for t in tasks] == ["email"]
        assert tasks[0].lease is not None and tasks[0].lease.worker_id == "w1"
        done = client.ack(tasks[0])
        assert done.status == "completed"
    lease_cmd = harness.raft.commands[0]
    assert lease_cmd == {"op": "lease", "worker_id": "w1", "types": ["email"], "max_tasks": 5,
                         "lease_ms": 10_000}
    assert harness.raft.commands[1]["op"] == "ack"
    assert harness.raft.commands[1]["token"] == tasks[0].lease_token
    assert harness.metric("dqueue_gateway_tasks_leased_total") == 1


def test_long_poll_is_answered_when_a_task_arrives(harness):
    with harness.client(worker_id="w1") as client:
        rid = client.send_lease(2, wait_ms=10_000)
        # Several empty slices go by, then a task appears and is pushed.
        wait_for(lambda: len(harness.raft.commands) >= 2)
        harness.queue.enqueue("email")
        reply = wait_for(lambda: client.recv(50))
        assert reply.rid == rid and reply.kind == "tasks" and len(reply.tasks) == 1
    assert harness.metric("dqueue_gateway_waiting_leases") == 0


def test_long_poll_ends_empty_at_its_deadline(harness):
    with harness.client() as client:
        start = time.monotonic()
        assert client.lease(1, wait_seconds=0.5) == []
        assert time.monotonic() - start >= 0.45


def test_never_leases_more_than_asked(harness):
    for i in range(10):
        harness.queue.enqueue("email", i)
    with harness.client() as client:
        assert len(client.lease(3)) == 3
    assert len(harness.queue.by_status("leased")) == 3


def test_bad_fields_are_refused_naming_the_field(harness):
    with harness.client() as client:
        for body, field in [({"worker_id": "w", "max_tasks": 0}, "max_tasks"),
                            ({"worker_id": "w", "max_tasks": 101}, "max_tasks"),
                            ({"worker_id": "w", "wait_ms": 999_999}, "wait_ms"),
                            ({"worker_id": "w", "types": "email"}, "types"),
                            ({"max_tasks": 1}, "worker_id"),
                            ({"worker_id": "w", "bogus": 1}, "bogus")]:
            client._send(b"lease", dict(body))
            reply = wait_for(lambda: client.recv(50))
            assert isinstance(reply.error, InvalidRequest), body
            assert reply.error.field == field
        client._send(b"ack", {"worker_id": "w"})
        reply = wait_for(lambda: client.recv(50))
        assert reply.error.field == "id"
        client._send(b"nack", {"id": "t1", "worker_id": "w", "dead_letter": "yes"})
        assert wait_for(lambda: client.recv(50)).error.field == "dead_letter"
        client._send(b"frobnicate", {})
        assert wait_for(lambda: client.recv(50)).error.code == "unknown_kind"
    assert harness.raft.commands == []


def test_malformed_frames_are_dropped_and_counted(harness):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(harness.gateway.endpoint)
    try:
        sock.send_multipart([b"\x01", b"lease"])
        sock.send_multipart([b"\x09", b"lease", b"\x80"])
        sock.send_multipart([b"\x01", b"lease", b"\xc1"])
        sock.send_multipart([b"\x01", b"lease", wire.encode(b"x", [1, 2])[2]])
        wait_for(lambda: harness.metric("dqueue_gateway_dropped_total", reason="malformed") == 4)
        sock.send_multipart(wire.encode(b"ping", {"rid": 7}))
        assert sock.poll(5000)
        kind, body = wire.decode(sock.recv_multipart())
        assert (kind, body) == (b"pong", {"rid": 7})
    finally:
        sock.close(0)


def test_lease_conflict_and_no_leader_are_forwarded(harness):
    harness.queue.enqueue("email")
    with harness.client(worker_id="w1") as w1, harness.client(worker_id="w2") as w2:
        task = w1.lease(1)[0]
        with pytest.raises(LeaseConflict):
            w2._call(lambda: w2._send(b"ack", {"id": task.id, "worker_id": "w2"}))
        harness.raft.script = lambda body: [(b"err", {
            "rid": body["rid"], "code": "no_leader", "message": "election",
            "leader_id": "n2", "leader_http": "127.0.0.1:8082"})]
        with pytest.raises(NoLeader) as info:
            w1.ack(task)
        assert info.value.leader_http == "127.0.0.1:8082"


def test_raft_silence_is_answered_with_timeout(harness):
    harness.raft.script = lambda body: []
    harness.queue.enqueue("email")
    with harness.client() as client:
        rid = client.send_lease(1)
        reply = wait_for(lambda: client.recv(100), timeout_s=5)
        assert reply.rid == rid and reply.error is not None and reply.error.code == "timeout"


def test_bye_drops_waiting_leases(harness):
    with harness.client() as client:
        client.send_lease(1, wait_ms=10_000)
        wait_for(lambda: harness.metric("dqueue_gateway_waiting_leases") == 1)
        client.send_bye()
        wait_for(lambda: harness.metric("dqueue_gateway_waiting_leases") == 0)
        sent = len(harness.raft.commands)
        harness.queue.enqueue("email")
        time_limit = time.monotonic() + 0.5
        while time.monotonic() < time_limit:
            assert client.recv(50) is None
        # No further slice was proposed, so the task was not leased to the departed worker.
        assert len(harness.raft.commands) == sent
        assert harness.queue.by_status("pending")


def test_silent_worker_waiting_leases_are_dropped(tmp_path):
    h = Harness(tmp_path, liveness_ms=300)
    with h.raft:
        h.thread.start()
        assert h.gateway.ready.wait(5)
        try:
            client = h.client()
            client.send_lease(1, wait_ms=10_000)
            wait_for(lambda: h.metric("dqueue_gateway_workers") == 1)
            # The worker sends nothing more: after liveness_ms it is forgotten.
            wait_for(lambda: h.metric("dqueue_gateway_workers") == 0)
            wait_for(lambda: h.metric("dqueue_gateway_waiting_leases") == 0)
            client.socket.close(0)
        finally:
            h.gateway.stop()
            h.thread.join(5)


def test_stop_returns_quickly(harness):
    start = time.monotonic()
    harness.gateway.stop()
    harness.thread.join(2)
    assert not harness.thread.is_alive()
    assert time.monotonic() - start < 0.3


def test_acks_of_several_workers_share_one_command_and_are_answered_each(slow_acks):
    h = slow_acks
    for i in range(5):
        h.queue.enqueue("email", i)
    with h.client(worker_id="w1") as w1, h.client(worker_id="w2") as w2:
        mine = w1.lease(3)
        theirs = w2.lease(2)
        sent = {("w1", w1.send_ack(task)): task for task in mine}
        sent.update({("w2", w2.send_ack(task)): task for task in theirs})
        replies = {}
        for name, client in (("w1", w1), ("w1", w1), ("w1", w1), ("w2", w2), ("w2", w2)):
            reply = wait_for(lambda c=client: c.recv(50))
            replies[name, reply.rid] = reply
    assert replies.keys() == sent.keys()
    for key, task in sent.items():
        assert replies[key].error is None and replies[key].task.id == task.id
        assert replies[key].task.status == "completed"
    acks = [cmd for cmd in h.raft.commands if cmd["op"] in ("ack", "ack_batch")]
    assert len(acks) == 1 and acks[0]["op"] == "ack_batch"
    assert sorted(item["id"] for item in acks[0]["items"]) == sorted(t.id for t in sent.values())
    assert h.metric("dqueue_gateway_ack_commands_total") == 1
    assert len(h.queue.by_status("completed")) == 5


def test_a_stale_ack_in_a_batch_gets_lease_conflict_alone(slow_acks):
    h = slow_acks
    h.queue.enqueue("email", 1)
    h.queue.enqueue("email", 2)
    with h.client(worker_id="w1") as client:
        good, stale = client.lease(2)
        good_rid = client.send_ack(good)
        stale_rid = client._send(b"ack", {"id": stale.id, "worker_id": "w1", "token": "0.0"})
        replies = {}
        for _ in range(2):
            reply = wait_for(lambda: client.recv(50))
            replies[reply.rid] = reply
    assert replies[good_rid].error is None and replies[good_rid].task.status == "completed"
    assert isinstance(replies[stale_rid].error, LeaseConflict)
    assert [cmd["op"] for cmd in h.raft.commands].count("ack_batch") == 1
    assert h.queue.by_status("leased")[0]["id"] == stale.id


def refuse_every_command(h) -> None:
    """From now on the fake Raft process answers every command no_leader."""
    h.raft.script = lambda body: [(b"err", {
        "rid": body["rid"], "code": "no_leader", "message": "election",
        "leader_id": "n2", "leader_http": "127.0.0.1:8082"})]


def test_a_refused_batch_answers_every_ack_it_carried(slow_acks):
    h = slow_acks
    h.queue.enqueue("email", 1)
    h.queue.enqueue("email", 2)
    with h.client(worker_id="w1") as client:
        tasks = client.lease(2)
        refuse_every_command(h)
        rids = {client.send_ack(task) for task in tasks}
        replies = [wait_for(lambda: client.recv(50)) for _ in tasks]
    assert {reply.rid for reply in replies} == rids
    assert all(isinstance(reply.error, NoLeader) for reply in replies)
    assert h.raft.commands[-1]["op"] == "ack_batch"


def test_ack_many_is_answered_once_with_a_result_per_item(harness):
    for i in range(3):
        harness.queue.enqueue("email", i)
    with harness.client(worker_id="w1") as client:
        tasks = client.lease(3)
        assert client.ack_many(tasks) == [None, None, None]
    batches = [cmd for cmd in harness.raft.commands if cmd["op"] == "ack_batch"]
    assert len(batches) == 1
    assert [item["id"] for item in batches[0]["items"]] == [t.id for t in tasks]
    assert all(item["worker_id"] == "w1" for item in batches[0]["items"])
    assert len(harness.queue.by_status("completed")) == 3
    assert harness.metric("dqueue_gateway_requests_total", kind="ack_many") == 1


def test_ack_many_and_lone_acks_share_one_command(slow_acks):
    h = slow_acks
    for i in range(4):
        h.queue.enqueue("email", i)
    with h.client(worker_id="w1") as w1, h.client(worker_id="w2") as w2:
        mine = w1.lease(3)
        theirs = w2.lease(1)[0]
        many_rid = w1.send_ack_many(mine)
        lone_rid = w2.send_ack(theirs)
        many = wait_for(lambda: w1.recv(50))
        lone = wait_for(lambda: w2.recv(50))
    assert many.rid == many_rid and many.kind == "acked" and many.results == (None,) * 3
    assert lone.rid == lone_rid and lone.task.status == "completed"
    acks = [cmd for cmd in h.raft.commands if cmd["op"] in ("ack", "ack_batch")]
    assert len(acks) == 1 and len(acks[0]["items"]) == 4


def test_a_stale_item_of_ack_many_fails_alone(harness):
    harness.queue.enqueue("email", 1)
    harness.queue.enqueue("email", 2)
    with harness.client(worker_id="w1") as client:
        good, stale = client.lease(2)
        rid = client._send(b"ack_many", {"worker_id": "w1", "items": [
            {"id": good.id, "token": good.lease_token}, {"id": stale.id, "token": "0.0"}]})
        reply = wait_for(lambda: client.recv(50))
    assert reply.rid == rid and reply.results[0] is None
    assert isinstance(reply.results[1], LeaseConflict)
    assert harness.queue.by_status("leased")[0]["id"] == stale.id


def test_a_refused_batch_fails_every_item_of_ack_many(slow_acks):
    h = slow_acks
    h.queue.enqueue("email", 1)
    h.queue.enqueue("email", 2)
    with h.client(worker_id="w1") as client:
        tasks = client.lease(2)
        refuse_every_command(h)
        rid = client.send_ack_many(tasks)
        reply = wait_for(lambda: client.recv(50))
    assert reply.rid == rid and all(isinstance(e, NoLeader) for e in reply.results)


def test_bad_ack_many_is_refused_whole_naming_the_field(harness):
    harness.queue.enqueue("email", 1)
    with harness.client(worker_id="w1") as client:
        task = client.lease(1)[0]
        good = {"id": task.id, "token": task.lease_token}
        for body, field in [({"items": [good]}, "worker_id"),
                            ({"worker_id": "w1", "items": []}, "items"),
                            ({"worker_id": "w1", "items": [good] * 1_001}, "items"),
                            ({"worker_id": "w1", "items": [good, {"token": "1.0"}]},
                             "items[1].id"),
                            ({"worker_id": "w1", "items": [good, {"id": "x", "bogus": 1}]},
                             "items[1].bogus"),
                            ({"worker_id": "w1", "items": [good, {"id": "x", "token": 5}]},
                             "items[1].token"),
                            ({"worker_id": "w1", "items": [good, "x"]}, "items[1]")]:
            client._send(b"ack_many", dict(body))
            reply = wait_for(lambda: client.recv(50))
            assert isinstance(reply.error, InvalidRequest), body
            assert reply.error.field == field
    assert [cmd["op"] for cmd in harness.raft.commands] == ["lease"]
    assert harness.queue.by_status("leased")


def test_held_acks_wait_for_the_ack_command_in_flight(tmp_path):
    gateway = Harness(tmp_path).gateway  # not running: its rule alone, with a made-up clock
    item = {"id": "t1", "worker_id": "w1", "token": None}
    gateway._hold_ack((AckGroup(b"w", 1, [None], 1), 0, item), None, None, 100.0, 100)
    assert not gateway._acks.may_go(100.001)  # within the window
    assert gateway._acks.may_go(100.003)  # window over, nothing in flight
    gateway._acks.in_flight = 1
    assert not gateway._acks.may_go(100.003)  # window over, but a command is in flight
    assert not gateway._acks.may_go(100.0 + MAX_ACK_HOLD_MS / 1000 - 0.001)
    assert gateway._acks.may_go(100.0 + MAX_ACK_HOLD_MS / 1000)  # held long enough


def test_ack_commands_in_flight_are_counted_until_answered(slow_acks):
    h = slow_acks
    h.queue.enqueue("email", 1)
    with h.client(worker_id="w1") as client:
        task = client.lease(1)[0]
        assert client.ack_many([task]) == [None]
    assert h.gateway._acks.in_flight == 0


def test_keys_of_any_type_are_refused_and_the_gateway_lives_on(harness):
    # A msgpack map with a non-string key (int, nil, bytes) once raised TypeError in the
    # gateway thread, and every ZeroMQ worker was dead until the node restarted.
    harness.queue.enqueue("email", 1)
    with harness.client(worker_id="w1") as client:
        for key in (7, None, b"k"):
            client._send(b"lease", {"worker_id": "w1", key: 1})
            reply = wait_for(lambda: client.recv(50))
            assert isinstance(reply.error, InvalidRequest), key
            assert reply.error.field == repr(key)
        client._send(b"ack_many", {"worker_id": "w1", "items": [{"id": "x", 7: 1}]})
        assert wait_for(lambda: client.recv(50)).error.field == "items[0].7"
        assert len(client.lease(1)) == 1


def test_an_oversized_message_is_dropped_before_it_is_read(harness):
    from dqueue.api.gateway import MAX_WORKER_MESSAGE_BYTES

    ctx = zmq.Context.instance()
    big = ctx.socket(zmq.DEALER)
    big.setsockopt(zmq.LINGER, 0)
    big.connect(harness.gateway.endpoint)
    try:
        pad = b"x" * (MAX_WORKER_MESSAGE_BYTES + 1)
        big.send_multipart(wire.encode(b"ping", {"rid": 1, "pad": pad}))
        del pad
        with harness.client() as client:
            client._send(b"ping", {})
            assert wait_for(lambda: client.recv(50)).kind == "pong"
        # Had the gateway read it, it would have answered the ping by now.
        assert big.poll(300) == 0
    finally:
        big.close(0)
