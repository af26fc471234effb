"""HttpRuntime specifics: failover between nodes through the SDK's retries."""

from __future__ import annotations

import threading
from typing import Any

from dqueue.client.errors import InvalidRequest
from dqueue.client.task import Task
from dqueue.testing import wait_for
from dqueue.worker.app import Completion, Verdict, Worker
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


class RefusingClient:
    """Stands in for the runtime's Client: refuses every ack's result as a node with a lower
    ``api.max_result_bytes`` does, and records the nacks."""

    def __init__(self) -> None:
        self.nacks: list[tuple[str, str, str | None, bool]] = []

    def ack(self, task: Task, *, result: Any = None) -> Task:
        raise InvalidRequest("result: 2002 bytes as JSON, more than max_result_bytes 1024",
                             code="invalid_field", status=400, field="result")

    def nack(self, task: Task, reason: str = "", *, traceback: str | None = None,
             dead_letter: bool = False, retry_delay: float | None = None) -> Task:
        self.nacks.append((task.id, reason, traceback, dead_letter))
        self.retry_delays = [*getattr(self, "retry_delays", []), retry_delay]
        return task


def test_a_result_the_node_refuses_fails_the_task_with_its_reason():
    worker = Worker()
    runtime = HttpRuntime(worker, RuntimeConfig("w1"), ["http://127.0.0.1:1"])
    client = RefusingClient()
    runtime.client = client  # type: ignore[assignment]
    task = Task(id="t1", type="t")
    runtime.counts.acked = 1  # the run counted as an ack when it ended
    runtime._send_completion(Completion(task, Verdict.ACK, result="x" * 2_000))
    [(task_id, reason, traceback, dead)] = client.nacks
    assert task_id == "t1" and not dead and traceback is None
    assert reason.startswith("InvalidResult: ") and "max_result_bytes 1024" in reason
    assert runtime.counts.acked == 0 and runtime.counts.nacked == 1


def test_a_failure_is_nacked_with_its_traceback():
    runtime = HttpRuntime(Worker(), RuntimeConfig("w1"), ["http://127.0.0.1:1"])
    client = RefusingClient()
    runtime.client = client  # type: ignore[assignment]
    runtime._send_completion(Completion(Task(id="t2", type="t"), Verdict.DEAD_LETTER,
                                        "DeadLetter: no", traceback="File x\nDeadLetter: no"))
    assert client.nacks == [("t2", "DeadLetter: no", "File x\nDeadLetter: no", True)]
