"""Runtime behaviour shared by both transports, against fakes on 127.0.0.1.

``http``: HttpRuntime -> fake REST server. ``zmq``: ZmqRuntime -> the real WorkerGateway -> a
fake Raft process on IPC. Both sit on the same naive ServedQueue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dqueue.api.gateway import WorkerGateway
from dqueue.config import NodeConfig
from dqueue.testing import wait_for
from dqueue.worker.app import DeadLetter, TaskContext, Worker
from dqueue.worker.http_runtime import HttpRuntime
from dqueue.worker.runtime import SHUTDOWN_REASON, RuntimeConfig, WorkerRuntime, backoff_s
from dqueue.worker.zmq_runtime import ZmqRuntime
from tests.unit.client.fakes import FakeHttpServer, FakeRaft, ServedQueue


class Env:
    """A fake cluster for one transport and the runtimes started on it."""

    def __init__(self, transport: str, tmp_path) -> None:
        self.transport = transport
        self.queue = ServedQueue(backoff_ms=60_000)
        self.runs: list[tuple[WorkerRuntime, threading.Thread]] = []
        self._close: list[Callable[[], None]] = []
        if transport == "http":
            server = FakeHttpServer(self.queue).__enter__()
            self._close.append(lambda: server.__exit__(None, None, None))
            self.url = server.url
        else:
            config = NodeConfig(id="n1", data_dir=str(tmp_path), worker_addr="127.0.0.1:0")
            raft = FakeRaft(config.ipc_endpoint(), self.queue).__enter__()
            gateway = WorkerGateway(config, CollectorRegistry(), lease_slice_ms=200)
            thread = threading.Thread(target=gateway.run, daemon=True)
            thread.start()
            assert gateway.ready.wait(5)
            self.url = gateway.endpoint

            def close() -> None:
                gateway.stop()
                thread.join(5)
                raft.__exit__(None, None, None)
            self._close.append(close)

    def start(self, worker: Worker, **settings: Any) -> WorkerRuntime:
        settings.setdefault("wait_ms", 300)
        config = RuntimeConfig(worker_id=settings.pop("worker_id", "w1"), **settings)
        runtime: WorkerRuntime
        if self.transport == "http":
            runtime = HttpRuntime(worker, config, [self.url])
        else:
            runtime = ZmqRuntime(worker, config, self.url)
        thread = threading.Thread(target=runtime.run, daemon=True)
        thread.start()
        self.runs.append((runtime, thread))
        return runtime

    def stop(self, runtime: WorkerRuntime, timeout_s: float = 10.0) -> None:
        runtime.drain()
        thread = next(t for r, t in self.runs if r is runtime)
        thread.join(timeout_s)
        assert not thread.is_alive(), "the runtime did not finish its drain"

    def close(self) -> None:
        for runtime, thread in self.runs:
            runtime.stop_now()
            thread.join(5)
        for fn in self._close:
            fn()

    def statuses(self) -> dict[str, str]:
        return {i: t["status"] for i, t in self.queue.tasks.items()}


@pytest.fixture(params=["http", "zmq"])
def env(request, tmp_path) -> Iterator[Env]:
    e = Env(request.param, tmp_path)
    try:
        yield e
    finally:
        e.close()


def test_backoff_is_capped():
    assert backoff_s(0) == 0.05 and backoff_s(1) == 0.1 and backoff_s(30) == 2.0


def test_capacity_is_concurrency_plus_prefetch():
    assert RuntimeConfig("w", concurrency=3).capacity == 6
    assert RuntimeConfig("w", concurrency=3, prefetch=1).capacity == 4


def test_ack_nack_and_dead_letter(env):
    worker = Worker()
    worker.register("ok", lambda p, c: None)

    def fail(payload, ctx):
        raise RuntimeError(f"failed {payload}")

    def reject(payload, ctx):
        raise DeadLetter("never")

    worker.register("fail", fail)
    worker.register("reject", reject)
    ok = [env.queue.enqueue("ok", i)[0]["id"] for i in range(20)]
    failed = env.queue.enqueue("fail", 7)[0]["id"]
    rejected = env.queue.enqueue("reject", max_retries=5)[0]["id"]
    runtime = env.start(worker, concurrency=3)
    wait_for(lambda: all(env.statuses()[i] == "completed" for i in ok)
             and env.statuses()[rejected] == "dead"
             and env.queue.tasks[failed]["last_error"])
    env.stop(runtime)
    assert env.queue.tasks[failed]["status"] == "pending"  # retried after backoff
    assert env.queue.tasks[failed]["last_error"] == "RuntimeError: failed 7"
    assert env.queue.tasks[rejected]["attempts"] == 1
    assert env.queue.tasks[rejected]["last_error"] == "DeadLetter: never"
    assert runtime.counts.acked == 20 and runtime.held_count() == 0


def test_long_handler_keeps_its_task_by_extending(env):
    worker = Worker()
    worker.register("slow", lambda p, c: time.sleep(1.6))
    task_id = env.queue.enqueue("slow")[0]["id"]
    runtime = env.start(worker, lease_ms=800, concurrency=1)
    wait_for(lambda: env.statuses()[task_id] == "completed")
    env.stop(runtime)
    task = env.queue.tasks[task_id]
    assert task["attempts"] == 1  # never expired, never redelivered
    assert env.queue.acks == [(task_id, "w1")]


def test_never_holds_more_than_capacity(env):
    worker = Worker()
    peak = [0]  # unfinished tasks held by the runtime (buffered or running)
    runtime: WorkerRuntime | None = None

    def work(payload, ctx):
        assert runtime is not None
        peak[0] = max(peak[0], runtime.slots_used())
        time.sleep(0.02)

    worker.register("t", work)
    for i in range(30):
        env.queue.enqueue("t", i)
    runtime = env.start(worker, concurrency=2, prefetch=1)
    wait_for(lambda: env.queue.counts()["completed"] == 30)
    env.stop(runtime)
    assert 2 <= peak[0] <= 3  # the buffer was used, and never more than 2 + 1


def test_drain_finishes_running_tasks_and_hands_back_the_rest(env):
    worker = Worker()
    started: list[str] = []
    gate = threading.Event()

    def slow(payload, ctx):
        started.append(ctx.task_id)
        gate.wait(10)

    worker.register("slow", slow)
    for i in range(8):
        env.queue.enqueue("slow", i)
    runtime = env.start(worker, concurrency=2, prefetch=2, grace_ms=10_000)
    wait_for(lambda: len(started) == 2 and len(env.queue.by_status("leased")) == 4)
    runtime.drain()
    # Buffered tasks go back at once, while the running ones still run.
    wait_for(lambda: len(env.queue.by_status("leased")) == 2)
    gate.set()
    env.stop(runtime)
    counts = env.queue.counts()
    assert counts["completed"] == 2 and counts["pending"] == 6 and counts["leased"] == 0
    assert runtime.counts.released == 2 and runtime.held_count() == 0
    # Released, not failed: the tasks that never ran used no attempt and are visible now.
    for task in env.queue.tasks.values():
        if task["status"] == "pending":
            assert task["attempts"] == 0 and task["last_error"] is None
    assert sorted(i for i, s in env.statuses().items() if s == "completed") == sorted(started)


def test_drain_nacks_what_outlives_the_grace_period(env):
    worker = Worker()
    gate, running = threading.Event(), threading.Event()

    def stuck(payload, ctx):
        running.set()
        gate.wait(10)

    worker.register("stuck", stuck)
    task_id = env.queue.enqueue("stuck")[0]["id"]
    runtime = env.start(worker, concurrency=1, grace_ms=200)
    assert running.wait(10)
    start = time.monotonic()
    env.stop(runtime)
    assert time.monotonic() - start < 5
    # Nacked: the attempt it used counts (a long poll still in flight may lease it once more
    # over HTTP: that lease is released, at no cost).
    task = env.queue.tasks[task_id]
    assert task["status"] == "pending" and task["attempts"] == 1
    assert task["last_error"] == SHUTDOWN_REASON
    gate.set()  # the late result is dropped, not acked
    wait_for(lambda: runtime.counts.dropped == 1)
    assert env.queue.acks == []


def test_lost_lease_drops_the_result_and_keeps_going(env):
    worker = Worker()

    def stolen(payload, ctx):
        # The lease runs out and, past the retry's backoff, another worker takes the task.
        env.queue.advance(30 + 60 + 1)
        assert env.queue.lease("thief", ["stolen"])

    worker.register("stolen", stolen)
    worker.register("ok", lambda p, c: None)
    lost = env.queue.enqueue("stolen")[0]["id"]
    runtime = env.start(worker, concurrency=1)
    wait_for(lambda: runtime.held_count() == 0 and runtime.counts.acked == 1)
    ok = env.queue.enqueue("ok")[0]["id"]
    wait_for(lambda: env.statuses()[ok] == "completed")
    env.stop(runtime)
    assert env.queue.tasks[lost]["status"] == "leased"
    assert env.queue.tasks[lost]["lease"]["worker_id"] == "thief"


def test_ctx_extend_gives_the_asked_lease(env):
    worker = Worker()
    done = threading.Event()

    def long(payload, ctx: TaskContext):
        ctx.extend(120)
        done.wait(10)

    worker.register("long", long)
    task_id = env.queue.enqueue("long")[0]["id"]
    runtime = env.start(worker, concurrency=1, lease_ms=5_000)
    wait_for(lambda: (env.queue.tasks[task_id]["lease"] or {}).get("expires_at_ms", 0)
             > time.time() * 1000 + 60_000)
    done.set()
    env.stop(runtime)
    assert env.statuses()[task_id] == "completed"


def test_stop_now_leaves_leases_to_expire(env):
    worker = Worker()
    gate = threading.Event()
    running = threading.Event()

    def stuck(payload: Any, ctx: TaskContext) -> None:
        running.set()
        gate.wait(10)

    worker.register("stuck", stuck)
    task_id = env.queue.enqueue("stuck")[0]["id"]
    runtime = env.start(worker, concurrency=1)
    # Wait for the handler itself: a task still buffered (leased, not yet running) is
    # handed back by a stop, which is the other rule.
    assert running.wait(10)
    runtime.stop_now()
    thread = env.runs[-1][1]
    thread.join(5)
    assert not thread.is_alive()
    assert env.statuses()[task_id] == "leased"
    gate.set()


def test_automatic_prefetch_follows_the_handlers_rate():
    runtime = WorkerRuntime(Worker(), RuntimeConfig("w", concurrency=4))
    assert runtime._capacity == 8 and runtime.config.max_capacity == 104
    runtime._maybe_tune_capacity(10.0)  # the first window starts
    runtime.counts.acked = 250  # 250 tasks in 0.125 s: 2,000/s, 200 in AUTO_BUFFER_S
    runtime._maybe_tune_capacity(10.125)
    assert runtime._capacity == 4 + 100  # the buffer grows, up to its bound
    runtime._maybe_tune_capacity(10.2)  # within the window: unchanged
    assert runtime._capacity == 104
    runtime.counts.acked += 1  # the handlers slowed down: the rate halves per window
    runtime._maybe_tune_capacity(10.25)  # 1,000/s: 100
    assert runtime._capacity == 4 + 100
    runtime._maybe_tune_capacity(10.375)  # 500/s: 50
    assert runtime._capacity == 4 + 50
    for step in range(1, 12):
        runtime._maybe_tune_capacity(10.375 + step * 0.125)
    assert runtime._capacity == 8  # back to concurrency + concurrency


def test_a_fixed_prefetch_is_never_tuned():
    runtime = WorkerRuntime(Worker(), RuntimeConfig("w", concurrency=2, prefetch=1))
    runtime._maybe_tune_capacity(1.0)
    runtime.counts.acked = 10_000
    runtime._maybe_tune_capacity(2.0)
    assert runtime._capacity == 3 == runtime.config.max_capacity
