"""Task results end to end on a real node, over both worker transports: a handler's return
value comes back through ``Client.wait`` (a long poll answered as the ack lands), a failure
leaves ``last_error`` and ``last_traceback``, and a result over a limit fails the task without
stopping the worker.

The node takes results of 2 KiB at most (``api.max_result_bytes``), the worker 64 KiB (its
default): a 5 KB result is refused by the node, a 100 KB one by the worker itself.
"""

from __future__ import annotations

import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.client import Client, Task, TaskStatus, WaitTimeout
from dqueue.testing import free_port, wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NODE_MAX_RESULT_BYTES = 2_048
WAIT_S = 20.0
PROMPT_S = 2.0  # a wait answers within this of the ack's commit

APP = textwrap.dedent("""
    from dqueue.worker import Worker

    worker = Worker()

    def double(payload, ctx):
        return {"doubled": payload * 2, "attempt": ctx.attempt}

    def parse_it(payload, ctx):
        return _parse(payload)

    def _parse(text):
        raise ValueError(f"bad value {text!r}")

    def over_the_node(payload, ctx):
        return "x" * 5_000

    def over_the_worker(payload, ctx):
        return "x" * 100_000

    def not_json(payload, ctx):
        return {1, 2}

    for fn in (double, parse_it, over_the_node, over_the_worker, not_json):
        for transport in ("http", "zmq"):
            worker.register(f"{fn.__name__}-{transport}", fn)
""")


class NodeEnv:
    def __init__(self, root: Path) -> None:
        (root / "resultsapp.py").write_text(APP)
        self.cluster = NodeCluster(root, 1, queue={"max_retries": 0},
                                   api={"max_result_bytes": NODE_MAX_RESULT_BYTES})
        self.cluster.start()
        self.cluster.leader()
        # A comma-separated string, a node that is not there first: the client moves on.
        self.dead_url = f"http://127.0.0.1:{free_port()}"
        self.client = Client(f"{self.dead_url},{self.cluster.url('n1')}")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeEnv]:
    env = NodeEnv(tmp_path_factory.mktemp("results-node"))
    try:
        yield env
    finally:
        env.cluster.close()


def start_worker(node: NodeEnv, transport: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A dqueue-worker for this transport's task types. The HTTP one finds the node through
    ``DQUEUE_SERVER`` (a comma list, the missing node first), not a flag."""
    types = ",".join(f"{name}-{transport}" for name in (
        "double", "parse_it", "over_the_node", "over_the_worker", "not_json"))
    if transport == "zmq":
        target = ["--zmq", node.cluster.zmq("n1")]
    else:
        monkeypatch.setenv("DQUEUE_SERVER", f"{node.dead_url},{node.cluster.url('n1')}")
        target = []
    return node.cluster.spawn_worker(*target, "--app", "resultsapp:worker", "--types", types,
                                     "--worker-id", f"results-{transport}", "--wait", "1s",
                                     log_name=f"results-{transport}")


class Waiter(threading.Thread):
    """``Client.wait`` on a thread of its own: the task it returned, and when (wall clock)."""

    def __init__(self, client: Client, task_id: str) -> None:
        super().__init__(daemon=True)
        self.client, self.task_id = client, task_id
        self.task: Task | None = None
        self.error: BaseException | None = None
        self.returned_at_s = 0.0

    def run(self) -> None:
        try:
            self.task = self.client.wait(self.task_id, timeout=WAIT_S)
        except BaseException as exc:  # reported by the test
            self.error = exc
        self.returned_at_s = time.time()


@pytest.mark.parametrize("transport", ["http", "zmq"])
def test_results_failures_and_limits_through_client_wait(node, transport, monkeypatch):
    client = node.client
    doubled = client.enqueue(f"double-{transport}", 21).id
    # Waiting before any worker runs: the wait is parked on the node until the ack lands.
    waiter = Waiter(client, doubled)
    waiter.start()
    wait_for(lambda: client.get(doubled).status is TaskStatus.PENDING, 10, "task pending")
    failing = client.enqueue(f"parse_it-{transport}", "seven").id
    over_node = client.enqueue(f"over_the_node-{transport}").id
    over_worker = client.enqueue(f"over_the_worker-{transport}").id
    not_json = client.enqueue(f"not_json-{transport}").id
    proc = start_worker(node, transport, monkeypatch)
    try:
        waiter.join(WAIT_S + 10)
        assert not waiter.is_alive() and waiter.error is None, waiter.error
        task = waiter.task
        assert task is not None and task.status is TaskStatus.COMPLETED
        assert task.result == {"doubled": 42, "attempt": 1}
        # The long poll answered promptly once the ack was applied, not at its 20 s end.
        assert task.updated_at_ms is not None
        late_s = waiter.returned_at_s - task.updated_at_ms / 1000
        assert late_s < PROMPT_S, f"wait answered {late_s:.2f} s after the ack"

        failed = client.wait(failing, timeout=WAIT_S)
        assert failed.status is TaskStatus.DEAD and failed.result is None
        assert failed.last_error == "ValueError: bad value 'seven'"
        assert failed.last_traceback is not None
        assert "in _parse" in failed.last_traceback
        assert failed.last_traceback.rstrip().endswith("ValueError: bad value 'seven'")

        refused = client.wait(over_node, timeout=WAIT_S)  # the node's limit
        assert refused.status is TaskStatus.DEAD and refused.result is None
        assert refused.last_error is not None
        assert refused.last_error.startswith("InvalidResult: ")
        assert f"max_result_bytes {NODE_MAX_RESULT_BYTES}" in refused.last_error
        too_big = client.wait(over_worker, timeout=WAIT_S)  # the worker's own limit
        assert too_big.status is TaskStatus.DEAD
        assert too_big.last_error is not None and "max_result_bytes 65536" in too_big.last_error
        odd = client.wait(not_json, timeout=WAIT_S)
        assert odd.status is TaskStatus.DEAD
        assert odd.last_error is not None and odd.last_error.startswith("InvalidResult: ")

        # None of that stopped the worker: it still completes tasks, with their results.
        assert proc.poll() is None
        again = client.enqueue(f"double-{transport}", 5).id
        assert client.wait(again, timeout=WAIT_S).result == {"doubled": 10, "attempt": 1}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_a_wait_on_an_unfinished_task_times_out_with_the_task(node):
    task_id = node.client.enqueue("nobody-handles-this").id
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        node.client.wait(task_id, timeout=1.5)
    took_s = time.monotonic() - started
    assert 1.4 <= took_s < 1.5 + PROMPT_S  # waited on the node, not answered at once
    assert info.value.task is not None and info.value.task.status is TaskStatus.PENDING
