"""Two nodes on one data directory: the second refuses to start, naming the first's PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dqueue.config import NodeConfig
from dqueue.testing import free_port
from dqueue.testing.cluster import NodeCluster, is_alive, wait_http
from dqueue.testing.http import Http

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _enqueue(nodes: NodeCluster) -> str:
    http = Http(nodes.http_addr["n1"])
    try:
        status, _, task = http.call("POST", "/tasks", {"type": "t", "payload": {"n": 1}})
    finally:
        http.close()
    assert status == 201, task
    return task["id"]


def _task_status(nodes: NodeCluster, task_id: str) -> int:
    http = Http(nodes.http_addr["n1"])
    try:
        status, _, _ = http.call("GET", f"/tasks/{task_id}")
    finally:
        http.close()
    return status


def test_second_node_on_a_data_dir_in_use_exits_1_naming_the_holder(tmp_path) -> None:
    nodes = NodeCluster(tmp_path, 1, log_format="json", start=True)
    try:
        nodes.leader()
        api = nodes.api_pid("n1")
        raft = next(pid for pid in nodes.children["n1"] if pid != api)
        first_task = _enqueue(nodes)
        data_dir = tmp_path / "n1"

        # The whole node (bin/dqueue's supervisor): refused before it starts anything.
        second = tmp_path / "second.toml"
        second.write_text("\n".join([
            'id = "n1"', f'data_dir = "{data_dir}"',
            f'http_addr = "127.0.0.1:{free_port()}"', f'raft_addr = "127.0.0.1:{free_port()}"',
            f'worker_addr = "127.0.0.1:{free_port()}"', "bootstrap = true",
        ]) + "\n")
        done = subprocess.run([sys.executable, "-m", "dqueue.supervisor", "--config", str(second)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert f"in use by process {raft} " in done.stderr

        # The Raft process alone (what a supervisor that lost the race starts): refused too.
        config = NodeConfig(id="n1", data_dir=str(data_dir),
                            raft_addr=f"127.0.0.1:{free_port()}",
                            http_addr=f"127.0.0.1:{free_port()}",
                            worker_addr=f"127.0.0.1:{free_port()}", bootstrap=True)
        done = subprocess.run([sys.executable, "-m", "dqueue.node", "--config-json",
                               config.to_json()],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert f"in use by process {raft} " in done.stderr

        # The first node never noticed: it still serves and writes.
        assert (nodes.health("n1") or {}).get("role") == "leader"
        second_task = _enqueue(nodes)

        # kill -9 of the holder: the kernel drops its lock; a new node starts on the directory.
        os.kill(raft, signal.SIGKILL)
        assert nodes.procs["n1"].wait(30) != 0
        wait_http(lambda: not is_alive(api), "the first node's API process to stop")
        nodes.start("n1")
        nodes.leader()
        assert _task_status(nodes, first_task) == 200
        assert _task_status(nodes, second_task) == 200
    finally:
        nodes.close()
