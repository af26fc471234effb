"""``AsyncClient`` against a real 3-node cluster: concurrent enqueues from one event loop, the
results a real worker returns through ``wait``, and both again after the leader is killed."""

from __future__ import annotations

import asyncio
import signal
import textwrap

import pytest

from dqueue.client import AsyncClient, RetryPolicy, TaskStatus
from dqueue.testing.cluster import NodeCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUND = 30  # concurrent enqueues per round
WAIT_S = 30.0

APP = textwrap.dedent("""
    from dqueue.worker import Worker

    worker = Worker()

    @worker.task("square")
    def square(payload, ctx):
        return {"square": payload * payload}
""")


async def one_round(client: AsyncClient, offset: int) -> dict[str, int]:
    """Enqueue ``ROUND`` tasks at once, then wait for every result at once: {id: payload}."""
    tasks = await asyncio.gather(*(client.enqueue("square", offset + i) for i in range(ROUND)))
    done = await asyncio.gather(*(client.wait(t.id, timeout=WAIT_S) for t in tasks))
    for sent, finished in zip(tasks, done, strict=True):
        assert finished.id == sent.id and finished.status is TaskStatus.COMPLETED
        assert finished.result == {"square": sent.payload * sent.payload}
    return {t.id: t.payload for t in tasks}


def test_async_enqueue_and_wait_across_a_leader_kill(tmp_path):
    (tmp_path / "squareapp.py").write_text(APP)
    cluster = NodeCluster(tmp_path, 3)
    try:
        cluster.start()
        leader = cluster.leader()
        survivors = [n for n in cluster.ids if n != leader]
        # The client knows the followers first: it moves to the leader by hints or refusals.
        urls = [cluster.url(n) for n in (*survivors, leader)]
        worker = cluster.spawn_worker("--server", ",".join(cluster.urls()), "--app",
                                      "squareapp:worker", "--wait", "1s", log_name="square")

        async def scenario() -> tuple[dict[str, int], dict[str, int], list[str]]:
            client = AsyncClient(urls, retry=RetryPolicy(deadline_s=60.0))
            async with client:
                before = await one_round(client, 0)
                cluster.kill(leader)
                after = await one_round(client, 1_000)
                return before, after, client.servers

        before, after, servers = asyncio.run(scenario())
        assert set(servers) >= set(urls)
        assert len(before) == len(after) == ROUND
        new_leader = cluster.leader(among=survivors)
        assert new_leader != leader
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        cluster.close()
