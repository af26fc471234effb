"""ZmqRuntime specifics: moving to another gateway when the current one falls silent."""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry

from dqueue.api.gateway import WorkerGateway
from dqueue.client.errors import InvalidRequest, LeaseConflict, NoLeader, ServerError
from dqueue.client.task import Task
from dqueue.client.zmq_client import Reply
from dqueue.config import NodeConfig
from dqueue.testing import wait_for
from dqueue.worker.app import Completion, Verdict, Worker
from dqueue.worker.runtime import RuntimeConfig
from dqueue.worker.zmq_runtime import Request, ZmqRuntime
from tests.unit.client.fakes import FakeRaft, ServedQueue


def start_gateway(config: NodeConfig) -> tuple[WorkerGateway, threading.Thread]:
    gateway = WorkerGateway(config, CollectorRegistry(), lease_slice_ms=200)
    thread = threading.Thread(target=gateway.run, daemon=True)
    thread.start()
    assert gateway.ready.wait(5)
    return gateway, thread


def test_moves_to_the_next_gateway_when_one_dies(tmp_path):
    config = NodeConfig(id="n1", data_dir=str(tmp_path), worker_addr="127.0.0.1:0")
    queue = ServedQueue()
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
    queue = ServedQueue()
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


class RecordingClient:
    """Stands in for the ZmqWorkerClient of a runtime's I/O thread: records what is sent (the
    op and task ids in ``sent``; the results and tracebacks sent with them in ``extras``)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.extras: list[Any] = []

    def _record(self, op: str, tasks: list[Task], extra: Any = None) -> int:
        self.sent.append((op, [t.id for t in tasks]))
        self.extras.append(extra)
        return len(self.sent)

    def send_ack_many(self, tasks: list[Task], results: list[Any] | None = None) -> int:
        return self._record("ack_many", list(tasks), results)

    def send_ack(self, task: Task, result: Any = None) -> int:
        return self._record("ack", [task], result)

    def send_nack(self, task: Task, reason: str = "", *, dead_letter: bool = False,
                  traceback: str | None = None, retry_delay: float | None = None) -> int:
        self.retry_delays = [*getattr(self, "retry_delays", []), retry_delay]
        return self._record("dead_letter" if dead_letter else "nack", [task], (reason, traceback))


def test_verdicts_found_together_go_as_one_ack_many_and_single_nacks():
    runtime = ZmqRuntime(Worker(), RuntimeConfig("w1"), "tcp://127.0.0.1:1")
    client = RecordingClient()
    runtime._client = client  # type: ignore[assignment]
    tasks = [Task(id=f"t{i}", type="t") for i in range(5)]
    verdicts = [Verdict.ACK, Verdict.NACK, Verdict.ACK, Verdict.DEAD_LETTER, Verdict.ACK]
    runtime._outbox = [Completion(t, v, "r") for t, v in zip(tasks, verdicts, strict=True)]
    runtime._read_outbox(time.monotonic())
    assert sorted(client.sent) == sorted([("ack_many", ["t0", "t2", "t4"]), ("nack", ["t1"]),
                                          ("dead_letter", ["t3"])])
    # A lone ack goes as a plain ack.
    runtime._outbox = [Completion(Task(id="t9", type="t"), Verdict.ACK)]
    runtime._read_outbox(time.monotonic())
    assert client.sent[-1] == ("ack", ["t9"])


def test_a_nack_carries_its_retry_delay_to_the_gateway():
    runtime = ZmqRuntime(Worker(), RuntimeConfig("w1"), "tcp://127.0.0.1:1")
    client = RecordingClient()
    runtime._client = client  # type: ignore[assignment]
    runtime._outbox = [Completion(Task(id="t1", type="t"), Verdict.NACK, "Retry", retry_delay=1.5)]
    runtime._read_outbox(time.monotonic())
    assert client.sent == [("nack", ["t1"])] and client.retry_delays == [1.5]


def test_falls_back_to_single_acks_when_the_gateway_refuses_ack_many(tmp_path, monkeypatch):
    def older_gateway(self, identity, rid, body, router, ipc, now, worker_name, body_bytes):
        self._send_error(router, identity, rid, "unknown_kind", "unknown message kind")

    monkeypatch.setattr(WorkerGateway, "_handle_ack_many", older_gateway)
    config = NodeConfig(id="n1", data_dir=str(tmp_path), worker_addr="127.0.0.1:0")
    queue = ServedQueue()
    gate = threading.Barrier(3)
    worker = Worker()
    worker.register("t", lambda p, c: gate.wait(10))  # three finish together (most often)
    for i in range(3):
        queue.enqueue("t", i)
    with FakeRaft(config.ipc_endpoint(), queue):
        gateway, gateway_thread = start_gateway(config)
        runtime = ZmqRuntime(worker, RuntimeConfig("w1", concurrency=3, wait_ms=200),
                             gateway.endpoint)
        thread = threading.Thread(target=runtime.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: queue.counts()["completed"] == 3)
            wait_for(lambda: runtime.held_count() == 0)
        finally:
            runtime.drain()
            thread.join(10)
            gateway.stop()
            gateway_thread.join(5)
    assert runtime.counts.acked == 3 and not thread.is_alive()


def test_an_acked_reply_forgets_done_items_and_retries_those_without_a_leader():
    runtime = ZmqRuntime(Worker(), RuntimeConfig("w1"), "tcp://127.0.0.1:1")
    client = RecordingClient()
    runtime._client = client  # type: ignore[assignment]
    tasks = [Task(id=f"t{i}", type="t") for i in range(3)]
    runtime._settling.update(t.id for t in tasks)
    now = time.monotonic()
    request = Request("ack_many", tasks, now)
    runtime._handle_acked(request, Reply("acked", 1, results=(
        None, NoLeader("election"), LeaseConflict("taken", code="lease_conflict"))), now)
    assert runtime._settling == {"t1"}  # done and refused are forgotten; t1 waits for a retry
    [(_, retry)] = runtime._retries
    assert retry.op == "ack_many" and [t.id for t in retry.tasks] == ["t1"]


def test_an_older_gateway_refusing_ack_many_gets_single_acks():
    runtime = ZmqRuntime(Worker(), RuntimeConfig("w1"), "tcp://127.0.0.1:1")
    client = RecordingClient()
    runtime._client = client  # type: ignore[assignment]
    tasks = [Task(id=f"t{i}", type="t") for i in range(2)]
    now = time.monotonic()
    refusal = ServerError("unknown message kind", code="unknown_kind")
    runtime._handle_acked(Request("ack_many", tasks, now), Reply("err", 1, error=refusal), now)
    assert client.sent == [("ack", ["t0"]), ("ack", ["t1"])]
    runtime._outbox = [Completion(t, Verdict.ACK) for t in tasks]
    runtime._read_outbox(now)
    assert client.sent[2:] == [("ack", ["t0"]), ("ack", ["t1"])]  # and from then on


def test_results_go_with_their_acks_and_tracebacks_with_their_nacks():
    runtime = ZmqRuntime(Worker(), RuntimeConfig("w1"), "tcp://127.0.0.1:1")
    client = RecordingClient()
    runtime._client = client  # type: ignore[assignment]
    tasks = [Task(id=f"t{i}", type="t") for i in range(4)]
    runtime._outbox = [
        Completion(tasks[0], Verdict.ACK, result={"rows": 1}),
        Completion(tasks[1], Verdict.NACK, "E: boom", traceback="File x\nE: boom"),
        Completion(tasks[2], Verdict.ACK),  # no result
        Completion(tasks[3], Verdict.DEAD_LETTER, "DeadLetter: no", traceback="tb"),
    ]
    runtime._read_outbox(time.monotonic())
    sent = dict(zip((op for op, _ in client.sent), client.extras, strict=True))
    assert sent["ack_many"] == [{"rows": 1}, None]
    assert sent["nack"] == ("E: boom", "File x\nE: boom")
    assert sent["dead_letter"] == ("DeadLetter: no", "tb")


def test_acks_with_large_results_are_split_into_messages_of_about_1_mib():
    runtime = ZmqRuntime(Worker(), RuntimeConfig("w1"), "tcp://127.0.0.1:1")
    client = RecordingClient()
    runtime._client = client  # type: ignore[assignment]
    big = "x" * 600_000
    runtime._outbox = [Completion(Task(id=f"t{i}", type="t"), Verdict.ACK, result=big)
                       for i in range(3)]
    runtime._read_outbox(time.monotonic())
    assert client.sent == [("ack_many", ["t0", "t1"]), ("ack", ["t2"])]
    assert client.extras == [[big, big], big]


def test_a_result_the_gateway_refuses_fails_the_task_with_its_reason():
    runtime = ZmqRuntime(Worker(), RuntimeConfig("w1"), "tcp://127.0.0.1:1")
    client = RecordingClient()
    runtime._client = client  # type: ignore[assignment]
    task = Task(id="t0", type="t")
    runtime.counts.acked = 1  # the run counted as an ack when it ended
    now = time.monotonic()
    runtime._pending[7] = Request("ack", [task], now, results=["x" * 2_000])
    refusal = InvalidRequest("result: 2002 bytes as JSON, more than max_result_bytes 1024",
                             code="invalid_field", field="result")
    runtime._handle_reply(Reply("err", 7, error=refusal), now)
    assert client.sent == [("nack", ["t0"])]
    reason, traceback = client.extras[0]
    assert reason.startswith("InvalidResult: ") and "max_result_bytes 1024" in reason
    assert traceback is None
    assert runtime.counts.acked == 0 and runtime.counts.nacked == 1


def test_a_refused_heartbeat_is_logged_once_and_an_older_gateway_gets_no_more(caplog):
    runtime = ZmqRuntime(Worker(), RuntimeConfig("w1", heartbeat_ms=1_000), "tcp://127.0.0.1:1")
    now = time.monotonic()
    full = ServerError("worker_id: at most 1000 workers are listed", code="invalid_state")
    for rid in (1, 2):
        runtime._beat_rid = rid
        runtime._handle_reply(Reply("err", rid, error=full), now)
    refusals = [r.message for r in caplog.records if "heartbeat refused" in r.message]
    assert len(refusals) == 1 and "at most 1000 workers" in refusals[0]
    assert runtime.heartbeats.enabled
    runtime._beat_rid = 3
    runtime._handle_reply(Reply("err", 3, error=ServerError("unknown message kind",
                                                            code="unknown_kind")), now)
    assert not runtime.heartbeats.enabled and not runtime.heartbeats.is_due(now + 60)
