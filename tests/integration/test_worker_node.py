"""dqueue-worker processes against a real node, over HTTP and over ZeroMQ.

One node (supervisor, Raft and API processes, real LMDB, loopback) serves the module; each test
uses task types of its own so that tests never see each other's tasks.
"""

from __future__ import annotations

import signal
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue.client import Client, TaskStatus
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration

APP = textwrap.dedent("""
    import time
    from dqueue.worker import DeadLetter, Worker

    worker = Worker()

    def ok(payload, ctx):
        pass

    def fail(payload, ctx):
        raise RuntimeError("it failed")

    def dead(payload, ctx):
        raise DeadLetter("it is dead")

    def slow(payload, ctx):
        time.sleep(payload)

    def first_attempt_hangs(payload, ctx):
        if ctx.attempt == 1:
            time.sleep(600)

    for name, fn in [("ok", ok), ("fail", fail), ("dead", dead), ("slow", slow),
                     ("hang1", first_attempt_hangs)]:
        for transport in ("http", "zmq"):
            for test in range(6):
                worker.register(f"{name}-{transport}-{test}", fn)
""")


class NodeEnv:
    def __init__(self, root: Path) -> None:
        (root / "itapp.py").write_text(APP)
        self.cluster = NodeCluster(root, 1, queue={"lease_timeout": "2s",
                                                   "backoff_base": "100ms",
                                                   "max_retries": 1})  # two attempts
        self.cluster.start()
        self.cluster.leader()
        self.client = Client(self.cluster.urls())

    def worker(self, transport: str, types: list[str], *extra: str, name: str = "w"):
        target = (["--zmq", self.cluster.zmq("n1")] if transport == "zmq"
                  else ["--server", self.cluster.url("n1")])
        return self.cluster.spawn_worker(*target, "--app", "itapp:worker", "--types",
                                         ",".join(types), "--worker-id", name, "--wait", "1s",
                                         *extra, log_name=name)

    def status(self, task_id: str) -> TaskStatus:
        return self.client.get(task_id).status


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[NodeEnv]:
    env = NodeEnv(tmp_path_factory.mktemp("worker-node"))
    try:
        yield env
    finally:
        env.cluster.close()


def stop(proc, timeout_s: float = 30.0) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout_s)


@pytest.mark.parametrize("transport", ["http", "zmq"])
def test_ack_nack_and_dead_letter(node, transport):
    t = f"{transport}-0"
    ok = [node.client.enqueue(f"ok-{t}", i).id for i in range(10)]
    failing = node.client.enqueue(f"fail-{t}").id
    dead = node.client.enqueue(f"dead-{t}", max_retries=5).id
    proc = node.worker(transport, [f"ok-{t}", f"fail-{t}", f"dead-{t}"], name=f"ack-{t}")
    try:
        wait_for(lambda: all(node.status(i) is TaskStatus.COMPLETED for i in ok)
                 and node.status(failing) is TaskStatus.DEAD
                 and node.status(dead) is TaskStatus.DEAD, 60, "ack, nack, dead-letter")
    finally:
        assert stop(proc) == 0
    failed_task = node.client.get(failing)
    assert failed_task.attempts == 2 and failed_task.last_error == "RuntimeError: it failed"
    dead_task = node.client.get(dead)
    assert dead_task.attempts == 1 and "it is dead" in (dead_task.last_error or "")


@pytest.mark.parametrize("transport", ["http", "zmq"])
def test_handler_longer_than_the_lease_keeps_its_task(node, transport):
    t = f"{transport}-1"
    task_id = node.client.enqueue(f"slow-{t}", 3.5).id
    proc = node.worker(transport, [f"slow-{t}"], "--lease-timeout", "1s", name=f"slow-{t}")
    try:
        wait_for(lambda: node.status(task_id) is TaskStatus.COMPLETED, 60, "slow task done")
    finally:
        assert stop(proc) == 0
    assert node.client.get(task_id).attempts == 1  # extended, never redelivered


@pytest.mark.parametrize("transport", ["http", "zmq"])
def test_sigkilled_worker_task_is_redelivered(node, transport):
    t = f"{transport}-2"
    task_id = node.client.enqueue(f"hang1-{t}").id
    victim = node.worker(transport, [f"hang1-{t}"], "--lease-timeout", "2s",
                         name=f"victim-{t}")
    wait_for(lambda: (lease := node.client.get(task_id).lease) is not None
             and lease.worker_id == f"victim-{t}", 60, "the victim holds the task")
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.monotonic()
    rescuer = node.worker(transport, [f"hang1-{t}"], name=f"rescuer-{t}")
    try:
        wait_for(lambda: node.status(task_id) is TaskStatus.COMPLETED, 60, "redelivery")
    finally:
        assert stop(rescuer) == 0
    task = node.client.get(task_id)
    assert task.attempts == 2
    assert time.monotonic() - killed_at >= 0.5  # it waited for the lease to lapse


@pytest.mark.parametrize("transport", ["http", "zmq"])
def test_sigterm_drains_without_losing_or_holding_tasks(node, transport):
    t = f"{transport}-3"
    ids = [node.client.enqueue(f"slow-{t}", 1.0).id for _ in range(8)]
    proc = node.worker(transport, [f"slow-{t}"], "--concurrency", "2", "--prefetch", "2",
                       "--grace", "20s", name=f"drain-{t}")
    wait_for(lambda: sum(node.status(i) is TaskStatus.LEASED for i in ids) == 4, 60,
             "two running and two buffered")
    assert stop(proc) == 0
    statuses = [node.status(i) for i in ids]
    assert TaskStatus.LEASED not in statuses  # nothing left leased
    assert statuses.count(TaskStatus.COMPLETED) >= 2  # the running ones finished
    assert set(statuses) <= {TaskStatus.COMPLETED, TaskStatus.PENDING}
    # Whatever was handed back is available at once, to the next worker.
    follower = node.worker(transport, [f"slow-{t}"], "--concurrency", "4", name=f"next-{t}")
    try:
        wait_for(lambda: all(node.status(i) is TaskStatus.COMPLETED for i in ids), 60,
                 "the rest done by the next worker")
    finally:
        assert stop(follower) == 0


def gateway_counter(node: NodeEnv, sample: str) -> float:
    with urllib.request.urlopen(f"{node.cluster.url('n1')}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            name, _, value = line.rpartition(" ")
            if name == sample:
                return float(value)
    return 0.0


def test_zmq_worker_sends_acks_together(node):
    t = "zmq-4"
    ids = [task.id for task in node.client.enqueue_many(
        {"type": f"ok-{t}", "payload": i} for i in range(300))]
    before = gateway_counter(node, 'dqueue_gateway_requests_total{kind="ack_many"}')
    proc = node.worker("zmq", [f"ok-{t}"], "--concurrency", "4", name=f"many-{t}")
    try:
        wait_for(lambda: all(node.status(i) is TaskStatus.COMPLETED for i in ids), 60,
                 "all done")
    finally:
        assert stop(proc) == 0
    assert all(node.client.get(i).attempts == 1 for i in ids[:20])
    # 300 no-op tasks on 4 threads: acks found ready together go as one message.
    assert gateway_counter(node, 'dqueue_gateway_requests_total{kind="ack_many"}') > before
