"""A rate limit on real nodes (issue 17): four dqueue-worker processes share one type's limit,
set by the decorator's ``rate_limit=`` at start, and together complete tasks at the limit's
rate, within 5%, however many of them ask."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest

from dqueue.client import Client, TaskStatus
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration

LIMIT_PER_S = 20
TASKS = 110  # about 5 s at the limit
# The first completions include the burst the bucket allows after an idle spell (at most
# 1 + BURST_MS / interval = 3 at 20/s): the steady rate is measured after them.
SKIP = 10

APP = textwrap.dedent(f"""
    from dqueue.worker import Worker

    worker = Worker()

    @worker.task("limited", rate_limit="{LIMIT_PER_S}/s")
    def limited(payload, ctx):
        return ctx.worker_id
""")


@pytest.mark.slow
def test_four_workers_complete_at_the_limit(tmp_path: Path) -> None:
    (tmp_path / "rlapp.py").write_text(APP)
    cluster = NodeCluster(tmp_path, 1)
    workers = []
    try:
        cluster.start()
        cluster.leader()
        client = Client(cluster.urls())
        ids = [task.id for task in client.enqueue_many(
            [{"type": "limited", "payload": i} for i in range(TASKS)])]
        for n in range(4):
            workers.append(cluster.spawn_worker(
                "--server", cluster.url("n1"), "--app", "rlapp:worker", "--worker-id",
                f"rl-{n}", "--concurrency", "2", "--wait", "1s", log_name=f"rl-{n}"))
        wait_for(lambda: client.list_rate_limits() == [
            {"type": "limited", "rate_limit": f"{LIMIT_PER_S}/s"}], 60, "the limit is set")

        def done() -> int:
            return int(client.stats()["tasks"].get("completed", 0))
        wait_for(lambda: done() == TASKS, 120, f"{TASKS} tasks completed")
        tasks = [client.get(task_id) for task_id in ids]
        assert all(task.status is TaskStatus.COMPLETED and task.attempts == 1
                   for task in tasks)
        # Every worker took part (each result names its worker): the limit held across them.
        assert {task.result for task in tasks} == {f"rl-{n}" for n in range(4)}
        times_ms = sorted(task.updated_at_ms for task in tasks)  # cluster time of each ack
        steady = times_ms[SKIP:]
        rate = (len(steady) - 1) * 1000 / (steady[-1] - steady[0])
        assert abs(rate - LIMIT_PER_S) <= 0.05 * LIMIT_PER_S, (rate, times_ms)
        overall = (TASKS - 1) * 1000 / (times_ms[-1] - times_ms[0])
        assert overall <= LIMIT_PER_S * 1.05, (overall, times_ms)
        # No second holds more than the limit plus the burst (and the jitter of acks).
        for start_ms in times_ms:
            in_window = sum(1 for t in times_ms if start_ms <= t < start_ms + 1_000)
            assert in_window <= LIMIT_PER_S + 4, (start_ms, in_window)
        for n in range(4):
            log_text = cluster.log_text(f"rl-{n}")
            assert '"event":"rate_limit_set"' in log_text and '"rate_limit":"20/s"' in log_text
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(30)
        cluster.close()
