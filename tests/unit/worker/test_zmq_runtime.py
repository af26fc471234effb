"""ZmqRuntime specifics: moving to another gateway when the current one falls silent."""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry

from dqueue.api.gateway import WorkerGateway
from dqueue.config import NodeConfig
from dqueue.worker.app import Worker
from dqueue.worker.runtime import RuntimeConfig
from dqueue.worker.zmq_runtime import ZmqRuntime
from tests.unit.client.fakes import FakeQueue, FakeRaft, wait_for


def start_gateway(config: NodeConfig) -> tuple[WorkerGateway, threading.Thread]:
    gateway = WorkerGateway(config, CollectorRegistry(), lease_slice_ms=200)
    thread = threading.Thread(target=gateway.run, daemon=True)
    thread.start()
    assert gateway.ready.wait(5)
    return gateway, thread


def test_moves_to_the_next_gateway_when_one_dies(tmp_path):
    config = NodeConfig(id="n1", data_dir=str(tmp_path), worker_addr="127.0.0.1:0")
    queue = FakeQueue()
    worker = Worker()
    worker.register("t", lambda p, c: None)
    with FakeRaft(config.ipc_endpoint(), queue):
        first, first_thread = start_gateway(config)
        second, second_thread = start_gateway(config)  # a second node's gateway, same queue
        # A lease slice in flight when the first gateway dies may lease tasks that never reach
        # the worker: they come back when their (short) lease expires.
        runtime = ZmqRuntime(worker, RuntimeConfig("w1", concurrency=2, wait_ms=300,
                                                   lease_ms=1_000),
                             [first.endpoint, second.endpoint], gateway_silence_s=0.5)
        thread = threading.Thread(target=runtime.run, daemon=True)
        thread.start()
        try:
            queue.enqueue("t", 1)
            wait_for(lambda: queue.counts()["completed"] == 1)
            first.stop()
            first_thread.join(5)
            for i in range(5):
                queue.enqueue("t", i)
            wait_for(lambda: queue.counts()["completed"] == 6)
            assert runtime._endpoint_index == 1
        finally:
            runtime.drain()
            thread.join(10)
            second.stop()
            second_thread.join(5)
    assert not thread.is_alive()


def test_a_lease_answered_after_the_worker_gave_up_is_still_used(tmp_path):
    config = NodeConfig(id="n1", data_dir=str(tmp_path), worker_addr="127.0.0.1:0")
    queue = FakeQueue()
    worker = Worker()
    worker.register("t", lambda p, c: None)
    task_id = queue.enqueue("t")[0]["id"]
    calls = []

    def slow_first_lease(body):
        calls.append(body["cmd"]["op"])
        if len(calls) == 1:
            time.sleep(1.0)  # the Raft process is slow to answer the first lease
        return None

    with FakeRaft(config.ipc_endpoint(), queue) as raft:
        raft.script = slow_first_lease
        gateway, gateway_thread = start_gateway(config)
        runtime = ZmqRuntime(worker, RuntimeConfig("w1", concurrency=1, wait_ms=200,
                                                   request_timeout_ms=200), gateway.endpoint)
        thread = threading.Thread(target=runtime.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: queue.counts()["completed"] == 1, 5.0)
        finally:
            runtime.drain()
            thread.join(10)
            gateway.stop()
            gateway_thread.join(5)
    assert queue.tasks[task_id]["attempts"] == 1  # processed, not left to expire
