"""Real dqueue nodes and clusters on 127.0.0.1: the one launcher of the tests and benchmarks.

A cluster lives in a directory its caller owns (pytest's ``tmp_path``): member ``<id>``
(``n1``, ``n2``...) keeps its data in ``<root>/<id>`` and its output in ``<root>/<id>.log``;
every port is a free loopback port; with ``secure=True`` the members get CURVE keys made as
``dqueue-cli keys init`` makes them, under ``<root>/keys/<id>`` (their ``secure_dir``). Every
member runs in a session of its own, started and signalled by ``dqueue.testing.processes``;
``close`` kills every process the cluster started, by PID, and nothing else. Conditions are
waited on with deadlines (``wait_for``), never with fixed sleeps.

Two kinds of member share that layout (``Members``):

- ``NodeCluster``: full nodes, ``python -m dqueue.supervisor --config <root>/<id>.toml`` (the
  program behind ``bin/dqueue``: a supervisor with its Raft and API processes), spoken to over
  HTTP and the worker gateway;
- ``dqueue.testing.raftproc.RaftCluster``: Raft processes alone (``python -m dqueue.node``),
  spoken to over the IPC the API uses.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import dqueue
from dqueue.keys import create_cluster_keys
from dqueue.testing.processes import NodeProcess, NodeSpec, health, process_tree
from dqueue.testing.waits import free_ports, wait_for

# Where the dqueue package imported here lives: the child processes import the same one.
SOURCE_ROOT = Path(dqueue.__file__).resolve().parents[1]
# Generous: on a loaded 2-core machine a node takes 10 to 15 s to start.
START_DEADLINE_S = 60.0
# What an HTTP call to a node that is not up (yet) raises.
HTTP_ERRORS = (OSError, http.client.HTTPException, ValueError)


def wait_http(condition: Any, what: str, deadline_s: float = START_DEADLINE_S) -> Any:
    """``wait_for`` where a failed HTTP call means "not yet" (a node still starting)."""
    return wait_for(condition, deadline_s, what, interval_s=0.05, ignore=HTTP_ERRORS)


def child_env() -> dict[str, str]:
    """Environment additions of every process a cluster starts."""
    return {"PYTHONPATH": str(SOURCE_ROOT), "PYTHONUNBUFFERED": "1"}


def is_alive(pid: int) -> bool:
    """Whether a process with that PID exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Members:
    """The layout shared by both kinds of cluster: ids, addresses, keys, processes, logs.

    Args:
        root: A directory owned by the caller.
        size: The number of members.
        secure: Make CURVE keys for the members under ``<root>/keys``.
    """

    def __init__(self, root: Path, size: int, secure: bool = False) -> None:
        self.root = root
        self.ids = [f"n{i + 1}" for i in range(size)]
        ports = iter(free_ports(3 * size))
        self.raft_addr = {i: f"127.0.0.1:{next(ports)}" for i in self.ids}
        self.http_addr = {i: f"127.0.0.1:{next(ports)}" for i in self.ids}
        self.worker_addr = {i: f"127.0.0.1:{next(ports)}" for i in self.ids}
        # Where each member's key folder is (``<keys_dir>/<id>``) when secure, else None.
        self.keys_dir: Path | None = None
        if secure:
            self.keys_dir = root / "keys"
            create_cluster_keys(str(self.keys_dir), self.ids)
        self.nodes: dict[str, NodeProcess] = {}

    def data_dir(self, node_id: str) -> Path:
        """The member's data directory."""
        return self.root / node_id

    def secure_dir(self, node_id: str) -> Path | None:
        """The member's key folder, or None for an insecure cluster."""
        return None if self.keys_dir is None else self.keys_dir / node_id

    def _process(self, node_id: str, argv: list[str]) -> NodeProcess:
        old = self.nodes.get(node_id)
        if old is not None and old.is_running():
            raise RuntimeError(f"{node_id} runs already (pid {old.proc.pid if old.proc else '?'})")
        spec = NodeSpec(id=node_id, http_addr=self.http_addr[node_id], argv=argv,
                        log_path=str(self.root / f"{node_id}.log"), env=child_env())
        self.nodes[node_id] = NodeProcess(spec)
        return self.nodes[node_id]

    def is_running(self, node_id: str) -> bool:
        """Whether the member's process (its supervisor, for a full node) is alive."""
        node = self.nodes.get(node_id)
        return node is not None and node.is_running()

    def running(self) -> list[str]:
        """The ids of the members whose process is alive."""
        return [n for n in self.ids if self.is_running(n)]

    def log_text(self, name: str) -> str:
        """What the member (or a worker of that log name) wrote so far."""
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class NodeCluster(Members):
    """``size`` full nodes on 127.0.0.1, each configured by its own TOML file.

    Args:
        root: A directory owned by the caller.
        size: The number of members.
        queue: Keys of the ``[queue]`` table (``lease_timeout = "2s"``...).
        raft: Keys of the ``[raft]`` table.
        api: Keys of the ``[api]`` table.
        top: More top-level keys (``insecure``...).
        extra_toml: Raw TOML appended to every member's file.
        secure: Make CURVE keys and give each member its ``secure_dir``.
        log_format: ``text`` or ``json``.
        start: Members to start now: True for all, or their ids (default: none).
    """

    def __init__(self, root: Path, size: int = 1, *, queue: dict[str, Any] | None = None,
                 raft: dict[str, Any] | None = None, api: dict[str, Any] | None = None,
                 top: dict[str, Any] | None = None, extra_toml: str = "",
                 secure: bool = False, log_format: str = "text",
                 start: bool | Iterable[str] = False) -> None:
        super().__init__(root, size, secure)
        self.configs: dict[str, Path] = {}
        # Each member's processes seen at the last ``leader()``: ``stop`` kills what is left.
        self.children: dict[str, list[int]] = {}
        self._workers: list[subprocess.Popen[bytes]] = []
        for node_id in self.ids:
            keys = {"secure_dir": str(self.secure_dir(node_id))} if secure else {}
            lines = [f"id = {_toml_value(node_id)}",
                     f"data_dir = {_toml_value(str(self.data_dir(node_id)))}",
                     f"http_addr = {_toml_value(self.http_addr[node_id])}",
                     f"raft_addr = {_toml_value(self.raft_addr[node_id])}",
                     f"worker_addr = {_toml_value(self.worker_addr[node_id])}",
                     "bootstrap = true", f"log_format = {_toml_value(log_format)}",
                     *(f"{k} = {_toml_value(v)}" for k, v in {**keys, **(top or {})}.items())]
            tables = {"peers": self.raft_addr if size > 1 else {},
                      "peers_http": self.http_addr if size > 1 else {},
                      "queue": queue or {}, "raft": raft or {}, "api": api or {}}
            for name, values in tables.items():
                lines.append(f"[{name}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
            path = root / f"{node_id}.toml"
            path.write_text("\n".join([*lines, extra_toml]) + "\n")
            self.configs[node_id] = path
            self._process(node_id, [sys.executable, "-m", "dqueue.supervisor", "--config",
                                    str(path)])
        for node_id in self.ids if start is True else (start or []):
            self.start(node_id)

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        """Each started member's supervisor process."""
        return {i: n.proc for i, n in self.nodes.items() if n.proc is not None}

    def url(self, node_id: str) -> str:
        """HTTP URL of a member."""
        return "http://" + self.http_addr[node_id]

    def urls(self) -> list[str]:
        """HTTP URLs of every member."""
        return [self.url(i) for i in self.ids]

    def zmq(self, node_id: str) -> str:
        """Worker gateway endpoint of a member."""
        return "tcp://" + self.worker_addr[node_id]

    def start(self, node_id: str | None = None) -> None:
        """Start one member (or all) unless it runs."""
        for nid in [node_id] if node_id else self.ids:
            self.nodes[nid].start()

    def kill(self, node_id: str) -> None:
        """kill -9 every process of a member (a crash)."""
        self.nodes[node_id].kill()

    def health(self, node_id: str) -> dict[str, Any] | None:
        """``GET /health`` of a member, or None when it does not answer 200."""
        return health(self.http_addr[node_id], timeout_s=2.0)

    def leader(self, among: Sequence[str] | None = None,
               deadline_s: float = START_DEADLINE_S) -> str:
        """Wait until the members (default: the running ones) agree on one leader among them,
        and return its id; remembers each member's processes for ``stop``."""
        def find() -> str | None:
            nodes = list(among or self.running())
            views = [self.health(n) for n in nodes]
            if not nodes or any(v is None for v in views):
                return None
            leaders = {v.get("leader_id") for v in views if v}
            leader = leaders.pop() if len(leaders) == 1 else None
            return leader if leader in nodes else None

        leader = wait_for(find, deadline_s, "a leader known to every running member")
        for node_id in among or self.running():
            self.children[node_id] = self.child_pids(node_id)
        return leader

    def child_pids(self, node_id: str) -> list[int]:
        """The member's processes below its supervisor (its Raft and API processes)."""
        proc = self.nodes[node_id].proc
        if proc is None or proc.poll() is not None:
            return []
        return process_tree(proc.pid)[1:]

    def api_pid(self, node_id: str) -> int | None:
        """The PID of a member's API process."""
        for pid in self.child_pids(node_id):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"dqueue.api" in cmdline:
                return pid
        return None

    def stop(self, node_id: str, timeout_s: float = 30.0) -> int | None:
        """SIGTERM a member's supervisor (a graceful stop) and wait for its exit status; past
        ``timeout_s`` kill the whole member. Any process of it still alive is then killed.

        Returns:
            The supervisor's exit status, None if it had to be killed.
        """
        node = self.nodes[node_id]
        proc = node.proc
        if proc is None:
            return None
        known = set(self.children.get(node_id, [])) | set(self.child_pids(node_id))
        code: int | None = proc.returncode
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                node.kill()
                code = None
        else:
            code = proc.returncode
        self._kill_leftovers(node_id, known)
        return code

    def _kill_leftovers(self, node_id: str, pids: Iterable[int]) -> None:
        """SIGKILL those of ``pids`` still alive that are this member's processes (their
        command line names its data directory), so that a reused PID is never signalled."""
        mark = str(self.data_dir(node_id)).encode()
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if mark in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def spawn_worker(self, *args: str, log_name: str = "worker") -> subprocess.Popen[bytes]:
        """Start ``python -m dqueue.worker.main ARGS`` in a session of its own; ``close``
        kills it."""
        log = open(self.root / f"{log_name}.log", "ab")  # noqa: SIM115 (closed below)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "dqueue.worker.main", *args],
                                    stdout=log, stderr=subprocess.STDOUT, cwd=str(self.root),
                                    env={**os.environ, **child_env()},
                                    start_new_session=True)
        finally:
            log.close()
        self._workers.append(proc)
        return proc

    def close(self) -> None:
        """Kill every worker and every member process this cluster started; safe to repeat."""
        for proc in self._workers:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for node_id, node in self.nodes.items():
            node.kill()
            self._kill_leftovers(node_id, self.children.get(node_id, []))
