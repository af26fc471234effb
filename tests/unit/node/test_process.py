"""RaftProcess in a thread of the test: one member, real LMDB and IPC, restart from disk."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from dqueue.config import NodeConfig
from dqueue.node.ipc_client import RaftClient, RaftClientError
from dqueue.node.process import RaftProcess, advertised_http, queue_config
from tests.integration.raftproc_cluster import free_port


def test_queue_config_maps_the_node_settings():
    config = NodeConfig(id="n1", lease_timeout_ms=7_000, max_retries=5, retention_ms=9)
    mapped = queue_config(config)
    assert (mapped.lease_ms, mapped.max_retries, mapped.retention_ms) == (7_000, 5, 9)


@pytest.mark.parametrize("http_addr, raft_addr, want", [
    ("127.0.0.2:8081", "127.0.0.2:9091", "127.0.0.2:8081"),
    (":8080", "10.0.0.5:9090", "10.0.0.5:8080"),
    ("0.0.0.0:8080", "node3:9090", "node3:8080"),
    (":8080", ":9090", ":8080"),
])
def test_advertised_http_replaces_bind_all_hosts(http_addr, raft_addr, want):
    assert advertised_http(http_addr, raft_addr) == want


class Running:
    """A RaftProcess built and run on its own thread (its sockets never leave that thread)."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.process: RaftProcess | None = None
        self.status: int | None = None
        self._built = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._built.wait(10)

    def _run(self) -> None:
        self.process = RaftProcess(self.config)
        self._built.set()
        self.status = self.process.run()

    def stop(self) -> int | None:
        assert self.process is not None
        self.process.request_stop()
        self._thread.join(10)
        return self.status


@pytest.fixture
def config(tmp_path) -> NodeConfig:
    return NodeConfig(id="n1", data_dir=str(tmp_path / "n1"), raft_addr=f"127.0.0.1:{free_port()}",
                      tick_ms=10, snapshot_entries=5)


@pytest.fixture
def client(config) -> Iterator[RaftClient]:
    with RaftClient(config.ipc_endpoint()) as c:
        yield c


def _wait_leader(client: RaftClient) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if client.read({"op": "health"}, timeout_ms=200)["role"] == "leader":
                return
        except RaftClientError:
            pass
        time.sleep(0.01)  # polling interval of a deadline wait
    raise AssertionError("no leader")


def test_commands_survive_a_restart_through_snapshot_and_log(config, client):
    node = Running(config)
    _wait_leader(client)
    for i in range(12):
        task = {"id": f"t{i}", "type": "x", "payload": i}
        assert client.command({"op": "enqueue", "tasks": [task]})["ok"]
    deadline = time.monotonic() + 10
    while client.read({"op": "metrics"})["snapshot_index"] < 5:  # taken by a forked child
        assert time.monotonic() < deadline, "no snapshot was stored"
        time.sleep(0.01)  # polling interval of a deadline wait
    assert node.stop() == 0
    node = Running(config)
    try:
        assert node.process.snapshot_index >= 5  # restored from the stored snapshot
        _wait_leader(client)
        for i in range(12):
            assert client.read({"op": "get", "id": f"t{i}"})["payload"] == i
    finally:
        assert node.stop() == 0
