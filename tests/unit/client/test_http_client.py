"""The HTTP SDK against a fake dqueue server on 127.0.0.1."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from dqueue.client import (
    Client,
    InvalidRequest,
    InvalidState,
    LeaseConflict,
    NoLeader,
    RetryPolicy,
    TaskNotFound,
    TaskStatus,
    Unavailable,
)
from dqueue.client.http_client import normalize_url
from tests.unit.client.fakes import FakeHttpServer


@pytest.fixture
def server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as srv:
        yield srv


def make_client(*urls: str, deadline_s: float = 2.0) -> Client:
    retry = RetryPolicy(deadline_s=deadline_s, backoff_base_s=0.01, backoff_cap_s=0.05)
    return Client(list(urls), worker_id="w1", timeout_s=2.0, retry=retry, rng=random.Random(1))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("url, want", [
    ("http://localhost:8081", "http://localhost:8081"),
    ("localhost:8081", "http://localhost:8081"),
    (":8081", "http://127.0.0.1:8081"),
    ("http://127.0.0.1:8081/", "http://127.0.0.1:8081"),
    ("http://example", "http://example:80"),
    ("0.0.0.0:8082", "http://127.0.0.1:8082"),
])
def test_normalize_url(url, want):
    assert normalize_url(url) == want


def test_normalize_url_keeps_https_and_refuses_other_schemes():
    assert normalize_url("https://proxy.example") == "https://proxy.example:443"
    assert normalize_url("https://x:1") == "https://x:1"
    with pytest.raises(ValueError, match="scheme"):
        normalize_url("ftp://x:1")


def test_enqueue_sends_a_generated_idempotency_key(server):
    client = make_client(server.url)
    task = client.enqueue("email", {"to": "a@b"}, priority=5, max_retries=2, delay=1.5)
    assert task.type == "email" and task.payload == {"to": "a@b"} and task.priority == 5
    assert task.status is TaskStatus.PENDING and not task.duplicate
    assert task.visible_at_ms - task.created_at_ms == 1500
    body = server.requests[-1][2]
    assert body["idempotency_key"].startswith("auto-")
    assert body["delay_seconds"] == 1.5 and body["max_retries"] == 2
    other = client.enqueue("email")
    assert server.requests[-1][2]["idempotency_key"] != body["idempotency_key"]
    assert other.id != task.id


def test_caller_key_deduplicates_and_says_so(server):
    client = make_client(server.url)
    first = client.enqueue("email", 1, idempotency_key="k1")
    again = client.enqueue("email", 1, idempotency_key="k1")
    assert again.id == first.id and again.duplicate and not first.duplicate
    assert len(server.queue.tasks) == 1


def test_lost_reply_retry_creates_no_second_task(server):
    server.faults = ["lost_reply", "drop"]
    client = make_client(server.url)
    task = client.enqueue("email", {"n": 1})
    assert len(server.queue.tasks) == 1
    assert task.id in server.queue.tasks
    assert not task.duplicate  # the first attempt was ours: not a duplicate for the caller
    keys = {body["idempotency_key"] for _, _, body in server.requests}
    assert len(keys) == 1 and len(server.requests) == 3


def test_503_leader_hint_is_followed(server):
    with FakeHttpServer(server.queue) as follower:
        follower.faults = [503]
        follower.hint = server.url.removeprefix("http://")
        client = make_client(follower.url)
        task = client.enqueue("email")
        assert task.id in server.queue.tasks
        assert len(follower.requests) == 1 and len(server.requests) == 1
        assert client.servers == [follower.url, server.url]
        client.get(task.id)  # sticks to the leader
        assert len(follower.requests) == 1


def test_connection_errors_rotate_to_the_next_node(server):
    dead = f"http://127.0.0.1:{closed_port()}"
    client = make_client(dead, server.url)
    assert client.enqueue("email").type == "email"


def test_no_leader_until_the_deadline(server):
    server.faults = [503] * 1000
    server.hint = None
    client = make_client(server.url, deadline_s=0.3)
    start = time.monotonic()
    with pytest.raises(NoLeader) as info:
        client.stats()
    assert 0.3 <= time.monotonic() - start < 2.0
    assert info.value.status == 503 and "scripted 503" in info.value.message
    assert len(server.requests) > 1


def test_unreachable_raises_unavailable():
    client = make_client(f"http://127.0.0.1:{closed_port()}", deadline_s=0.2)
    with pytest.raises(Unavailable):
        client.health()


def test_typed_errors_carry_the_server_message(server):
    client = make_client(server.url)
    with pytest.raises(TaskNotFound) as info:
        client.get("nope")
    assert info.value.status == 404 and "nope" in info.value.message
    with pytest.raises(InvalidRequest) as bad:
        client._request("POST", "/tasks", {"payload": 1})
    assert bad.value.field == "type" and bad.value.code == "missing_field"
    task = client.enqueue("email")
    leased = client.lease(types=["email"])
    assert leased is not None and leased.id == task.id
    with pytest.raises(LeaseConflict):
        client.ack(task.id, worker_id="someone-else")
    with pytest.raises(InvalidState):
        client.cancel(task.id)
    # Nothing changed by the refused calls.
    assert server.queue.tasks[task.id]["status"] == "leased"


def test_worker_surface_round_trip(server):
    client = make_client(server.url)
    assert client.lease() is None
    ids = [client.enqueue("email", i).id for i in range(3)]
    tasks = client.lease_many(2, lease_seconds=5, wait_seconds=0.1)
    assert [t.id for t in tasks] == ids[:2]
    assert all(t.lease and t.lease.worker_id == "w1" and t.lease_token for t in tasks)
    sent = server.requests[-1][2]
    assert sent == {"worker_id": "w1", "max_tasks": 2, "lease_seconds": 5, "wait_seconds": 0.1}
    extended = client.extend(tasks[0], 60)
    assert extended.lease.expires_at_ms > tasks[0].lease.expires_at_ms
    assert server.requests[-1][2]["lease_token"] == tasks[0].lease_token
    assert client.ack(tasks[0]).status is TaskStatus.COMPLETED
    assert client.ack(tasks[0]).status is TaskStatus.COMPLETED  # a repeated ack is harmless
    dead = client.nack(tasks[1], "boom", dead_letter=True)
    assert dead.status is TaskStatus.DEAD and dead.last_error == "boom"
    assert client.cancel(ids[2]).status is TaskStatus.CANCELLED


def test_long_poll_returns_when_a_task_arrives(server):
    client = make_client(server.url)
    timer = threading.Timer(0.2, lambda: server.queue.enqueue("email"))
    timer.start()
    try:
        start = time.monotonic()
        task = client.lease(wait_seconds=5)
        assert task is not None and time.monotonic() - start < 4
    finally:
        timer.cancel()


def test_a_long_poll_the_node_could_not_park_waits_retry_after_within_the_wait(server):
    """A worker beyond the node's parked places must not poll it in a tight loop."""
    client = make_client(server.url)
    server.faults = ["wait_refused", "wait_refused"]
    start = time.monotonic()
    assert client.lease(wait_seconds=5) is None
    assert 0.9 < time.monotonic() - start < 4  # Retry-After: 1
    start = time.monotonic()
    assert client.lease_many(3, wait_seconds=0.2) == []
    assert 0.15 < time.monotonic() - start < 1  # never longer than the wait asked for


def test_queue_full_and_a_reused_key_are_typed_errors():
    from dqueue.client import IdempotencyKeyReused, QueueFull
    from dqueue.client.errors import error_from_code
    assert isinstance(error_from_code("queue_full", "m", status=429), QueueFull)
    assert isinstance(error_from_code("idempotency_key_reused", "m", status=409),
                      IdempotencyKeyReused)


def test_dead_letters_redrive_and_purge(server):
    client = make_client(server.url)
    for i in range(150):
        task, _ = server.queue.enqueue("t" if i % 2 else "u", i)
        assert server.queue.dead_letter_next(task["type"]) == task["id"]
    dead = client.dead_letters()
    assert len(dead) == 150 and len({t.id for t in dead}) == 150
    assert len(client.dead_letters(limit=120)) == 120
    assert {t.type for t in client.dead_letters(type="t")} == {"t"}
    assert client.redrive(dead[0].id) == 1
    assert client.redrive(type="t") == 75 - (1 if dead[0].type == "t" else 0)
    assert client.purge(type="u") == 75 - (1 if dead[0].type == "u" else 0)
    assert client.purge() == 0


def test_enqueue_many_batches_by_1000(server):
    client = make_client(server.url)
    tasks = client.enqueue_many({"type": "t", "payload": i} for i in range(2500))
    assert [t.payload for t in tasks] == list(range(2500))
    batches = [body for method, path, body in server.requests if path == "/tasks/batch"]
    assert [len(b["tasks"]) for b in batches] == [1000, 1000, 500]
    assert all(item["idempotency_key"].startswith("auto-") for item in batches[0]["tasks"])
    with pytest.raises(ValueError, match="unknown task fields"):
        client.enqueue_many([{"type": "t", "colour": "red"}])


def test_reads_and_keep_alive(server):
    client = make_client(server.url)
    assert client.health()["role"] == "leader"
    assert client.stats()["tasks"]["pending"] == 0
    assert client.cluster()["members"][0]["id"] == "n1"
    assert len(set(server.client_ports)) == 1  # one kept-alive connection for all three



def test_a_leader_hint_keeps_the_scheme_of_the_node_that_gave_it():
    client = Client(["https://proxy-a.example:443"])
    client._route.follow_hint("proxy-b.example:8443", client.servers[0])
    assert client.servers[-1] == "https://proxy-b.example:8443"
    plain = Client("http://127.0.0.1:8081")
    plain._route.follow_hint(":8082", plain.servers[0])
    assert plain.servers[-1] == "http://127.0.0.1:8082"


def test_the_token_comes_from_the_argument_or_dqueue_token(server, monkeypatch):
    monkeypatch.setenv("DQUEUE_TOKEN", "dq_from_env")
    assert Client(server.url).token == "dq_from_env"
    assert Client(server.url, token="dq_given").token == "dq_given"
    monkeypatch.delenv("DQUEUE_TOKEN")
    assert Client(server.url).token is None
