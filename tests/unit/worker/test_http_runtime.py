"""HttpRuntime specifics: failover between nodes through the SDK's retries."""

from __future__ import annotations

import threading

from dqueue.testing import wait_for
from dqueue.worker.app import Worker
from dqueue.worker.http_runtime import HttpRuntime
from dqueue.worker.runtime import RuntimeConfig
from tests.unit.client.fakes import FakeHttpServer, ServedQueue


def test_leases_and_acks_through_a_node_that_answers(tmp_path):
    queue = ServedQueue()
    worker = Worker()
    worker.register("t", lambda p, c: None)
    with FakeHttpServer(queue) as down, FakeHttpServer(queue) as up:
        down.faults = ["drop"] * 1000  # this node is unreachable for good
        runtime = HttpRuntime(worker, RuntimeConfig("w1", concurrency=2, wait_ms=300),
                              [down.url, up.url])
        thread = threading.Thread(target=runtime.run, daemon=True)
        thread.start()
        try:
            for i in range(5):
                queue.enqueue("t", i)
            wait_for(lambda: queue.counts()["completed"] == 5)
        finally:
            runtime.drain()
            thread.join(10)
    assert not thread.is_alive()
    assert len(up.requests) >= 6  # leases and the five acks
