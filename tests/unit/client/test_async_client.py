"""The asyncio SDK against the fake dqueue server on 127.0.0.1: the same rules as ``Client``."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest

from dqueue.client import (
    AsyncClient,
    Client,
    NoLeader,
    RetryPolicy,
    TaskNotFound,
    TaskStatus,
    Unavailable,
    WaitTimeout,
    async_client,
)
from dqueue.client.async_client import BadAnswer, read_answer
from tests.unit.client.fakes import FakeHttpServer
from tests.unit.client.test_http_client import closed_port


@pytest.fixture
def server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as srv:
        yield srv


def make_client(*urls: str, deadline_s: float = 2.0) -> AsyncClient:
    retry = RetryPolicy(deadline_s=deadline_s, backoff_base_s=0.01, backoff_cap_s=0.05)
    return AsyncClient(list(urls), timeout_s=2.0, retry=retry, rng=random.Random(1))


def test_enqueue_get_and_keep_alive(server):
    async def scenario() -> None:
        async with make_client(server.url) as client:
            task = await client.enqueue("email", {"to": "a@b"}, priority=3)
            got = await client.get(task.id)
            assert (got.type, got.payload, got.priority) == ("email", {"to": "a@b"}, 3)
            assert (await client.health())["role"] == "leader"
            with pytest.raises(TaskNotFound):
                await client.get("nope")
    asyncio.run(scenario())
    assert server.requests[0][2]["idempotency_key"].startswith("auto-")
    assert len(set(server.client_ports)) == 1  # one kept-alive connection throughout


def test_concurrent_enqueues_each_make_one_task(server):
    async def scenario() -> list[str]:
        async with make_client(server.url) as client:
            tasks = await asyncio.gather(*(client.enqueue("t", i) for i in range(40)))
            return [t.id for t in tasks]
    ids = asyncio.run(scenario())
    assert len(set(ids)) == 40 and len(server.queue.tasks) == 40


def test_lost_reply_retry_creates_no_second_task(server):
    server.faults = ["lost_reply", "drop"]
    task = asyncio.run(make_client(server.url).enqueue("email"))
    assert list(server.queue.tasks) == [task.id]
    assert not task.duplicate  # our own retry matched our own first attempt
    assert len({body["idempotency_key"] for _, _, body in server.requests}) == 1


def test_503_leader_hint_is_followed_and_kept(server):
    async def scenario(client: AsyncClient) -> None:
        task = await client.enqueue("email")
        await client.get(task.id)

    with FakeHttpServer(server.queue) as follower:
        follower.faults = [503]
        follower.hint = server.url.removeprefix("http://")
        client = make_client(follower.url)
        asyncio.run(scenario(client))
        assert len(follower.requests) == 1 and len(server.requests) == 2
        assert client.servers == [follower.url, server.url]


def test_connection_errors_rotate_and_then_raise_unavailable(server):
    dead = f"http://127.0.0.1:{closed_port()}"
    assert asyncio.run(make_client(dead, server.url).enqueue("email")).type == "email"
    with pytest.raises(Unavailable):
        asyncio.run(make_client(dead, deadline_s=0.2).health())


def test_no_leader_until_the_deadline(server):
    server.faults = [503] * 1000
    start = time.monotonic()
    with pytest.raises(NoLeader) as info:
        asyncio.run(make_client(server.url, deadline_s=0.3).health())
    assert 0.3 <= time.monotonic() - start < 2.0
    assert "scripted 503" in info.value.message and len(server.requests) > 1


def test_enqueue_many_and_wait_for_a_finished_task(server):
    async def scenario() -> None:
        client = make_client(server.url)
        tasks = await client.enqueue_many({"type": "t", "payload": i} for i in range(1500))
        assert [t.payload for t in tasks] == list(range(1500))
        sync = Client(server.url, worker_id="w1")
        leased = sync.lease(types=["t"])
        assert leased is not None
        sync.ack(leased, result={"ok": 1})
        done = await client.wait(leased.id, timeout=2)
        assert done.status is TaskStatus.COMPLETED
        with pytest.raises(WaitTimeout):
            await client.wait(tasks[1].id, timeout=0)
        assert (await client.cancel(tasks[1].id)).status is TaskStatus.CANCELLED
    asyncio.run(scenario())
    sizes = [len(body["tasks"]) for _, path, body in server.requests if path == "/tasks/batch"]
    assert sizes == [1000, 500]


def answer_of(raw: bytes, method: str = "GET") -> tuple[int, dict[str, str], bytes, bool]:
    async def read() -> tuple[int, dict[str, str], bytes, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await read_answer(reader, method)
    return asyncio.run(read())


def test_read_answer_lengths_chunks_and_close():
    status, headers, body, keep = answer_of(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nRetry-After: 1\r\n\r\n{}")
    assert (status, headers["retry-after"], body, keep) == (200, "1", b"{}", True)
    chunked = (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\n[1,\r\n2;x=y\r\n2]\r\n0\r\n\r\n")
    assert answer_of(chunked)[2] == b"[1,2]"
    assert answer_of(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nrest")[2:] == (b"rest", False)
    assert answer_of(b"HTTP/1.1 204 No Content\r\n\r\n")[2] == b""


def test_read_answer_refuses_what_is_not_http():
    with pytest.raises(BadAnswer):
        answer_of(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(BadAnswer):
        answer_of(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    with pytest.raises(ConnectionResetError):
        answer_of(b"")


def test_read_answer_bounds_what_a_server_may_make_it_hold(monkeypatch):
    """Nothing from the network is trusted: a body, its chunks or its headers past the bounds
    end the answer as BadAnswer instead of growing the client's memory."""
    monkeypatch.setattr(async_client, "MAX_BODY_BYTES", 8)
    with pytest.raises(BadAnswer, match="body"):
        answer_of(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789")
    with pytest.raises(BadAnswer, match="body"):
        answer_of(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
    with pytest.raises(BadAnswer, match="body"):
        answer_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n")
    with pytest.raises(BadAnswer, match="body"):
        answer_of(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n123456789")
    assert answer_of(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n12345678")[2] == b"12345678"
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(async_client.MAX_HEADERS + 1))
    with pytest.raises(BadAnswer, match="header"):
        answer_of(b"HTTP/1.1 200 OK\r\n" + many + b"\r\n")
    trailers = b"".join(b"T-%d: 1\r\n" % i for i in range(async_client.MAX_HEADERS + 2))
    with pytest.raises(BadAnswer, match="trailer"):
        answer_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers)
