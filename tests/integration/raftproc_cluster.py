"""Helpers for the Raft process integration tests: real processes, real LMDB, loopback only.

``RaftCluster`` starts ``python -m dqueue.node`` processes with free ports and directories under
the test's temporary path, waits for conditions with deadlines (never fixed sleeps), and kills
every process it started, by PID, in ``close``. The benchmark in ``bench/`` uses it too.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.config import NodeConfig
from dqueue.keys import create_cluster_keys
from dqueue.protocol.ipc_client import RaftClient, RaftClientError

# Timers used by the tests: the defaults of NodeConfig (see docs/performance.md).
DEFAULT_DEADLINE_S = 20.0
# ``python -c`` program that runs ``dqueue.node`` under cProfile, timed in CPU time (not wall
# time, which on a shared machine mostly measures waiting), and dumps the profile on exit.
_PROFILED_MAIN = """
import cProfile, runpy, sys, time
out = sys.argv[1]
sys.argv = ["dqueue.node", *sys.argv[2:]]
prof = cProfile.Profile(time.process_time)
try:
    prof.runcall(runpy.run_module, "dqueue.node", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    prof.dump_stats(out)
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it: bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], deadline_s: float = DEFAULT_DEADLINE_S,
             what: str = "condition", interval_s: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except RaftClientError as exc:
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(interval_s)  # polling interval of a deadline wait, not a fixed wait
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error!r})")


def enqueue_cmd(task_id: str, task_type: str = "t", payload: Any = None) -> dict[str, Any]:
    """A one-task enqueue command in plain form."""
    return {"op": "enqueue", "tasks": [{"id": task_id, "type": task_type, "payload": payload}]}


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., RaftCluster]]:
    """Pytest fixture: ``make(size, **overrides)`` builds clusters that are closed afterwards."""
    made: list[RaftCluster] = []

    def make(size: int, **overrides: Any) -> RaftCluster:
        cluster = RaftCluster(tmp_path, size, **overrides)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()


class RaftCluster:
    """A set of Raft processes on loopback.

    Args:
        root: a temporary directory owned by the test.
        size: the number of members.
        secure: run a secured cluster: CURVE keys made with ``create_cluster_keys`` (as
            ``dqueue-cli keys init`` makes them) under ``<root>/keys``, one ``secure_dir``
            per member.
        overrides: NodeConfig fields applied to every member.
    """

    def __init__(self, root: Path, size: int, secure: bool = False, **overrides: Any) -> None:
        self.root = root
        ids = [f"n{i + 1}" for i in range(size)]
        # Where each member's key folder is (``<keys_dir>/<id>``) when secure, else None.
        self.keys_dir: Path | None = None
        if secure:
            self.keys_dir = root / "keys"
            create_cluster_keys(str(self.keys_dir), ids)
        raft_addrs = {i: f"127.0.0.1:{free_port()}" for i in ids}
        http_addrs = {i: f"127.0.0.1:{free_port()}" for i in ids}
        self.configs: dict[str, NodeConfig] = {}
        for node_id in ids:
            self.configs[node_id] = NodeConfig(
                id=node_id, data_dir=str(root / node_id), raft_addr=raft_addrs[node_id],
                http_addr=http_addrs[node_id], worker_addr=f"127.0.0.1:{free_port()}",
                peers=dict(raft_addrs) if size > 1 else {}, bootstrap=True,
                log_format="text", **overrides,
            )
            if self.keys_dir is not None:
                self.configs[node_id] = dataclasses.replace(
                    self.configs[node_id], secure_dir=str(self.keys_dir / node_id))
        self.procs: dict[str, subprocess.Popen] = {}
        self._clients: dict[str, RaftClient] = {}
        # When set, each member runs under cProfile and writes <profile_dir>/<id>.prof when it
        # exits cleanly (SIGTERM): the benchmark's --profile switch.
        self.profile_dir: Path | None = None

    @property
    def ids(self) -> list[str]:
        """Member ids, sorted."""
        return sorted(self.configs)

    def start(self, node_id: str | None = None) -> None:
        """Start one member (or all); its output goes to ``<root>/<id>.log``."""
        for nid in [node_id] if node_id else self.ids:
            cfg = self.configs[nid]
            log = open(self.root / f"{nid}.log", "ab")  # noqa: SIM115 (closed with the process)
            main = (["-m", "dqueue.node"] if self.profile_dir is None else
                    ["-c", _PROFILED_MAIN, str(self.profile_dir / f"{nid}.prof")])
            self.procs[nid] = subprocess.Popen(
                [sys.executable, *main, "--config-json", cfg.to_json()],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            log.close()

    def signal(self, node_id: str, sig: int) -> None:
        """Send a signal to one member's process, by PID."""
        self.procs[node_id].send_signal(sig)

    def kill(self, node_id: str) -> None:
        """kill -9 one member and reap it."""
        proc = self.procs.pop(node_id)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.drop_client(node_id)

    def stop(self, node_id: str, timeout_s: float = 15.0) -> int:
        """SIGTERM one member and wait for its exit status."""
        proc = self.procs.pop(node_id)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        finally:
            self.drop_client(node_id)

    def is_running(self, node_id: str) -> bool:
        """Whether the member's process is alive."""
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def close(self) -> None:
        """Kill every process this cluster started (by PID) and close the clients."""
        for node_id in list(self._clients):
            self.drop_client(node_id)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        self.procs.clear()

    def client(self, node_id: str) -> RaftClient:
        """A cached IPC client of one member (for the calling thread only)."""
        if node_id not in self._clients:
            self._clients[node_id] = RaftClient(self.configs[node_id].ipc_endpoint())
        return self._clients[node_id]

    def new_client(self, node_id: str) -> RaftClient:
        """A fresh IPC client (one per thread)."""
        return RaftClient(self.configs[node_id].ipc_endpoint())

    def drop_client(self, node_id: str) -> None:
        """Close the cached client of a member."""
        client = self._clients.pop(node_id, None)
        if client is not None:
            client.close()

    def health(self, node_id: str, timeout_ms: int = 500) -> dict[str, Any]:
        """The member's health answer."""
        return self.client(node_id).read({"op": "health"}, timeout_ms=timeout_ms)

    def leader(self, among: list[str] | None = None,
               deadline_s: float = DEFAULT_DEADLINE_S) -> str:
        """Wait until exactly one of ``among`` (default: running members) says it leads."""
        def find() -> str | None:
            nodes = among or [n for n in self.ids if self.is_running(n)]
            leaders = {n for n in nodes if self.health(n)["role"] == "leader"}
            if len(leaders) != 1:
                return None
            leader = leaders.pop()
            views = {self.health(n)["leader_id"] for n in nodes}
            return leader if views == {leader} else None
        return wait_for(find, deadline_s, "a single leader known to all")

    def stats(self, node_id: str) -> dict[str, Any]:
        """Stale stats read of one member's applied state."""
        return self.client(node_id).read({"op": "stats"}, stale=True)

    def wait_applied(self, node_id: str, index: int,
                     deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        """Wait until a member applied at least ``index``."""
        wait_for(lambda: self.health(node_id)["applied_index"] >= index, deadline_s,
                 f"{node_id} to apply {index}")

    def with_config(self, node_id: str, **changes: Any) -> None:
        """Change one member's configuration for its next start."""
        self.configs[node_id] = dataclasses.replace(self.configs[node_id], **changes)

    def log_text(self, node_id: str) -> str:
        """What the member's processes wrote so far."""
        path = self.root / f"{node_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Writer(threading.Thread):
    """A client that enqueues one task per command, continuously, until stopped.

    It sends to ``targets[0]`` and moves to the next target on any error, so it follows the
    cluster through failovers. ``acked`` holds the task ids whose commit was acknowledged, with
    the monotonic time of the acknowledgement.
    """

    def __init__(self, cluster: RaftCluster, prefix: str, targets: list[str],
                 timeout_ms: int = 1_000, limit: int | None = None) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.prefix = prefix
        self.targets = targets
        self.timeout_ms = timeout_ms
        self.limit = limit
        self.acked: dict[str, float] = {}
        self.errors = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        clients = {n: self.cluster.new_client(n) for n in self.targets}
        try:
            target, seq = 0, 0
            while not self._stop_event.is_set() and (self.limit is None or seq < self.limit):
                task_id = f"{self.prefix}-{seq}"
                node = self.targets[target % len(self.targets)]
                try:
                    outcome = clients[node].command(enqueue_cmd(task_id), self.timeout_ms)
                except RaftClientError:
                    self.errors += 1
                    target += 1
                    seq += 1  # the id may or may not have committed: never reuse it
                    continue
                if outcome.get("ok"):
                    self.acked[task_id] = time.monotonic()
                seq += 1
        finally:
            for client in clients.values():
                client.close()

    def stop(self) -> None:
        """Stop after the request in flight and wait for the thread."""
        self._stop_event.set()
        self.join(30)


def missing_on(cluster: RaftCluster, node_id: str, task_ids: Iterable[str]) -> list[str]:
    """The ids among ``task_ids`` that the member's applied state does not hold."""
    client = cluster.client(node_id)
    return [t for t in task_ids if client.read({"op": "get", "id": t}, stale=True) is None]


def converge(cluster: RaftCluster, nodes: list[str],
             deadline_s: float = DEFAULT_DEADLINE_S) -> int:
    """Wait until every node in ``nodes`` applied the leader's commit index; return it."""
    leader = cluster.leader(among=nodes, deadline_s=deadline_s)
    # A fresh write makes the leader commit everything before it (Raft section 5.4.2).
    wait_for(lambda: cluster.client(leader).command(enqueue_cmd(f"fence-{time.monotonic()}"),
                                                    timeout_ms=1_000)["ok"],
             deadline_s, "a fence write")
    commit = cluster.health(leader)["commit_index"]
    for node in nodes:
        cluster.wait_applied(node, commit, deadline_s)
    return commit
