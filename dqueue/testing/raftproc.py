"""Raft processes alone (``python -m dqueue.node``), spoken to over IPC as the API speaks to them.

``RaftCluster`` has the layout of every cluster of ``dqueue.testing.cluster`` (ports, data
directories, logs, keys, processes by PID); each member is configured by a ``NodeConfig``
passed as ``--config-json``. ``Writer``, ``converge`` and ``missing_on`` are what the fault
tests and the Raft benchmark build on.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dqueue.config import NodeConfig
from dqueue.protocol.ipc_client import RaftClient, RaftClientError
from dqueue.testing.cluster import Members
from dqueue.testing.waits import wait_for

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


def enqueue_cmd(task_id: str, task_type: str = "t", payload: Any = None) -> dict[str, Any]:
    """A one-task enqueue command in plain form."""
    return {"op": "enqueue", "tasks": [{"id": task_id, "type": task_type, "payload": payload}]}


def wait_raft(condition: Any, deadline_s: float = DEFAULT_DEADLINE_S,
              what: str = "condition", interval_s: float = 0.02) -> Any:
    """``wait_for`` where a failed IPC call means "not yet" (a member still starting)."""
    return wait_for(condition, deadline_s, what, interval_s=interval_s,
                    ignore=(RaftClientError,))


class RaftCluster(Members):
    """A set of Raft processes on loopback.

    Args:
        root: A directory owned by the caller.
        size: The number of members.
        secure: Run a secured cluster: CURVE keys under ``<root>/keys``, one ``secure_dir``
            per member.
        overrides: ``NodeConfig`` fields applied to every member.
    """

    def __init__(self, root: Path, size: int, secure: bool = False, **overrides: Any) -> None:
        super().__init__(root, size, secure)
        self.configs: dict[str, NodeConfig] = {}
        for node_id in self.ids:
            secure_dir = self.secure_dir(node_id)
            extra = {} if secure_dir is None else {"secure_dir": str(secure_dir)}
            self.configs[node_id] = NodeConfig(
                id=node_id, data_dir=str(self.data_dir(node_id)),
                raft_addr=self.raft_addr[node_id], http_addr=self.http_addr[node_id],
                worker_addr=self.worker_addr[node_id],
                peers=dict(self.raft_addr) if size > 1 else {}, bootstrap=True,
                log_format="text", **extra, **overrides,
            )
        # The process of each started member until it is killed or stopped (tests may pop one
        # whose exit they waited for themselves).
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._clients: dict[str, RaftClient] = {}
        # When set, each member runs under cProfile and writes <profile_dir>/<id>.prof when it
        # exits cleanly (SIGTERM): the benchmark's --profile switch.
        self.profile_dir: Path | None = None

    def start(self, node_id: str | None = None) -> None:
        """Start one member (or all) with its current configuration."""
        for nid in [node_id] if node_id else self.ids:
            main = (["-m", "dqueue.node"] if self.profile_dir is None else
                    ["-c", _PROFILED_MAIN, str(self.profile_dir / f"{nid}.prof")])
            node = self._process(nid, [sys.executable, *main, "--config-json",
                                       self.configs[nid].to_json()])
            node.start()
            assert node.proc is not None
            self.procs[nid] = node.proc

    def signal(self, node_id: str, sig: int) -> None:
        """Send a signal to one member's process, by PID."""
        self.procs[node_id].send_signal(sig)

    def kill(self, node_id: str) -> None:
        """kill -9 one member and reap it."""
        self.procs.pop(node_id)
        self.nodes[node_id].kill()
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
        for node in self.nodes.values():
            node.kill()  # a paused member too: its tree gets SIGCONT after SIGKILL
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
        return wait_raft(find, deadline_s, "a single leader known to all")

    def stats(self, node_id: str) -> dict[str, Any]:
        """Stale stats read of one member's applied state."""
        return self.client(node_id).read({"op": "stats"}, stale=True)

    def wait_applied(self, node_id: str, index: int,
                     deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        """Wait until a member applied at least ``index``."""
        wait_raft(lambda: self.health(node_id)["applied_index"] >= index, deadline_s,
                  f"{node_id} to apply {index}")

    def with_config(self, node_id: str, **changes: Any) -> None:
        """Change one member's configuration for its next start."""
        self.configs[node_id] = dataclasses.replace(self.configs[node_id], **changes)


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
    wait_raft(lambda: cluster.client(leader).command(enqueue_cmd(f"fence-{time.monotonic()}"),
                                                     timeout_ms=1_000)["ok"],
              deadline_s, "a fence write")
    commit = cluster.health(leader)["commit_index"]
    for node in nodes:
        cluster.wait_applied(node, commit, deadline_s)
    return commit
