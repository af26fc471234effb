"""A graceful worker shutdown costs no attempt (issue 17): the scenario that dead-lettered
tasks that never ran, on a real node and a real dqueue-worker process, over both transports.

``--concurrency 1 --prefetch 5`` and 8 tasks with ``max_retries`` 1: the worker holds up to 6.
SIGTERM after the first completes: the running task finishes within the grace period, the
buffered ones are released (pending at once, attempts 0), and none is dead.
"""

from __future__ import annotations

import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue.client import Client, TaskStatus
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = textwrap.dedent("""
    import time
    from dqueue.worker import Worker

    worker = Worker()

    def slow(payload, ctx):
        time.sleep(payload)

    for transport in ("http", "zmq"):
        worker.register(f"slow-{transport}", slow)
""")


class Env:
    def __init__(self, root: Path) -> None:
        (root / "shutdownapp.py").write_text(APP)
        self.cluster = NodeCluster(root, 1, queue={"lease_timeout": "2s",
                                                   "backoff_base": "100ms",
                                                   "max_retries": 1})
        self.cluster.start()
        self.cluster.leader()
        self.client = Client(self.cluster.urls())

    def worker(self, transport: str, task_type: str, *extra: str, name: str):
        target = (["--zmq", self.cluster.zmq("n1")] if transport == "zmq"
                  else ["--server", self.cluster.url("n1")])
        return self.cluster.spawn_worker(*target, "--app", "shutdownapp:worker", "--types",
                                         task_type, "--worker-id", name, "--wait", "1s",
                                         *extra, log_name=name)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[Env]:
    made = Env(tmp_path_factory.mktemp("worker-shutdown"))
    try:
        yield made
    finally:
        made.cluster.close()


@pytest.mark.parametrize("transport", ["http", "zmq"])
def test_sigterm_releases_prefetched_tasks_without_using_an_attempt(env, transport):
    task_type = f"slow-{transport}"
    ids = [env.client.enqueue(task_type, 0.5, max_retries=1).id for _ in range(8)]
    proc = env.worker(transport, task_type, "--concurrency", "1", "--prefetch", "5",
                      "--grace", "20s", name=f"shutdown-{transport}")
    try:
        wait_for(lambda: any(env.client.get(i).status is TaskStatus.COMPLETED for i in ids),
                 60, "the first task completed")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    tasks = [env.client.get(i) for i in ids]
    statuses = [task.status for task in tasks]
    assert TaskStatus.DEAD not in statuses and TaskStatus.LEASED not in statuses
    assert statuses.count(TaskStatus.COMPLETED) >= 1
    for task in tasks:
        if task.status is TaskStatus.PENDING:
            # Released or never leased: no attempt used, nothing recorded as a failure.
            assert task.attempts == 0 and task.last_error is None, task
        else:
            assert task.status is TaskStatus.COMPLETED and task.attempts == 1, task
    # Visible at once: a second worker finishes every one of them, each on its first attempt.
    follower = env.worker(transport, task_type, "--concurrency", "4", name=f"next-{transport}")
    try:
        wait_for(lambda: all(env.client.get(i).status is TaskStatus.COMPLETED for i in ids),
                 60, "the rest done by the next worker")
    finally:
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(30) == 0
    assert all(env.client.get(i).attempts == 1 for i in ids)
