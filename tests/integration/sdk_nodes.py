"""Full dqueue nodes (supervisor, Raft and API processes) for the SDK, worker and CLI tests.

``NodeCluster`` writes one TOML file per node under the test's temporary directory, with free
loopback ports, starts ``python -m dqueue.supervisor --config FILE`` for each in its own process
group (``dqueue.chaos.procs.NodeProcess``), waits for a leader with a deadline, and kills every
process group it started, by id, in ``close``. ``bench/bench_drain.py`` uses it too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dqueue.chaos.procs import NodeProcess, NodeSpec, health
from tests.integration.raftproc_cluster import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class NodeCluster:
    """``size`` full nodes on 127.0.0.1.

    Args:
        root: A temporary directory owned by the test.
        size: Number of members.
        queue: Keys of the ``[queue]`` table (``lease_timeout = "2s"``...).
        raft: Keys of the ``[raft]`` table.
        api: Keys of the ``[api]`` table.
        top: More top-level keys (``secure_dir``, ``insecure``...).
    """

    def __init__(self, root: Path, size: int = 1, *, queue: dict[str, Any] | None = None,
                 raft: dict[str, Any] | None = None, api: dict[str, Any] | None = None,
                 top: dict[str, Any] | None = None) -> None:
        self.root = root
        self.ids = [f"n{i + 1}" for i in range(size)]
        self.raft_addr = {i: f"127.0.0.1:{free_port()}" for i in self.ids}
        self.http_addr = {i: f"127.0.0.1:{free_port()}" for i in self.ids}
        self.worker_addr = {i: f"127.0.0.1:{free_port()}" for i in self.ids}
        self.nodes: dict[str, NodeProcess] = {}
        for node_id in self.ids:
            lines = [f"id = {_toml_value(node_id)}",
                     f"data_dir = {_toml_value(str(root / node_id))}",
                     f"http_addr = {_toml_value(self.http_addr[node_id])}",
                     f"raft_addr = {_toml_value(self.raft_addr[node_id])}",
                     f"worker_addr = {_toml_value(self.worker_addr[node_id])}",
                     "bootstrap = true", 'log_format = "text"',
                     *(f"{k} = {_toml_value(v)}" for k, v in (top or {}).items())]
            tables = {"peers": self.raft_addr if size > 1 else {},
                      "peers_http": self.http_addr if size > 1 else {},
                      "queue": queue or {}, "raft": raft or {}, "api": api or {}}
            for name, values in tables.items():
                lines.append(f"[{name}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
            conf = root / f"{node_id}.toml"
            conf.write_text("\n".join(lines) + "\n")
            spec = NodeSpec(id=node_id, http_addr=self.http_addr[node_id],
                            argv=[sys.executable, "-m", "dqueue.supervisor", "--config",
                                  str(conf)],
                            log_path=str(root / f"{node_id}.log"),
                            env={"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"})
            self.nodes[node_id] = NodeProcess(spec)
        self._workers: list[subprocess.Popen[bytes]] = []

    def url(self, node_id: str) -> str:
        """HTTP URL of a node."""
        return "http://" + self.http_addr[node_id]

    def urls(self) -> list[str]:
        """HTTP URLs of every node."""
        return [self.url(i) for i in self.ids]

    def zmq(self, node_id: str) -> str:
        """Worker gateway endpoint of a node."""
        return "tcp://" + self.worker_addr[node_id]

    def start(self, node_id: str | None = None) -> None:
        """Start one node (or all)."""
        for nid in [node_id] if node_id else self.ids:
            self.nodes[nid].start()

    def kill(self, node_id: str) -> None:
        """kill -9 a node's whole process group."""
        self.nodes[node_id].kill()

    def leader(self, among: Sequence[str] | None = None, deadline_s: float = 30.0) -> str:
        """Wait until the running nodes agree on one leader whose API answers; return its id."""
        def find() -> str | None:
            nodes = list(among or [n for n in self.ids if self.nodes[n].is_running()])
            views = [health(self.http_addr[n]) for n in nodes]
            if any(v is None for v in views):
                return None
            leaders = {v["leader_id"] for v in views if v}
            if len(leaders) != 1 or None in leaders:
                return None
            leader = leaders.pop()
            return leader if leader in nodes else None
        return wait_for(find, deadline_s, "a leader known to every running node")

    def spawn_worker(self, *args: str, log_name: str = "worker") -> subprocess.Popen[bytes]:
        """Start ``python -m dqueue.worker.main ARGS`` in its own process group."""
        log = open(self.root / f"{log_name}.log", "ab")  # noqa: SIM115 (closed below)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "dqueue.worker.main", *args],
                                    stdout=log, stderr=subprocess.STDOUT, cwd=str(self.root),
                                    env={**os.environ, "PYTHONPATH": str(REPO),
                                         "PYTHONUNBUFFERED": "1"},
                                    start_new_session=True)
        finally:
            log.close()
        self._workers.append(proc)
        return proc

    def log_text(self, name: str) -> str:
        """The log a node or worker wrote so far."""
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """Kill every worker and node process group this cluster started."""
        for proc in self._workers:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for node in self.nodes.values():
            node.kill()
