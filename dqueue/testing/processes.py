"""Node processes: start, kill -9, stop, pause, resume, restart, and ask their health.

The one way dqueue starts a node process and signals it, used by the cluster launcher
(``dqueue.testing.cluster``), the chaos harness and ``scripts/cluster.sh``. A node runs in a
session of its own; a signal meant for it goes to every process of it, by PID: the supervisor of
``bin/dqueue`` and its Raft and API children (each in a process group of its own, so a group
signal is not enough). Killing the supervisor alone would not crash the node: its children get
SIGTERM from the parent-death signal and stop gracefully, handing leadership over. So ``kill``
first freezes the whole tree with SIGSTOP, then sends SIGKILL to each process, as a machine
dying would. Only processes this module started (or their descendants) are ever signalled.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NodeSpec:
    """How to run one node: its id, HTTP address (host:port) and full command line."""

    id: str
    http_addr: str
    argv: list[str]
    log_path: str
    env: dict[str, str] = field(default_factory=dict)


def http_json(addr: str, method: str, path: str, body: Any = None,
              timeout_s: float = 2.0, token: str | None = None) -> tuple[int, Any]:
    """One HTTP request with a JSON body; returns (status, parsed body or None).

    ``token`` is sent as ``Authorization: Bearer`` (a node with tokens, docs/security.md).
    Raises OSError (including timeouts) when the node cannot be reached or does not answer.
    """
    host, _, port = addr.rpartition(":")
    conn = http.client.HTTPConnection(host or "127.0.0.1", int(port), timeout=timeout_s)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return response.status, parsed
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer: {exc.__class__.__name__}") from None
    finally:
        conn.close()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now, parents before children (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))  # fields[1]: the ppid
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        tree.append(current)
        queue += sorted(children.get(current, []))
    return tree


def signal_tree(pid: int, signum: int) -> list[int]:
    """Send ``signum`` to ``pid`` and every descendant, by PID; return the PIDs signalled.

    For SIGKILL the tree is frozen first (SIGSTOP) so that no process sees its parent die and
    reacts before it is killed itself.
    """
    tree = process_tree(pid)
    if signum == signal.SIGKILL:
        for member in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, signal.SIGSTOP)
        tree = list(dict.fromkeys([*tree, *process_tree(pid)]))
    for member in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signum)
    return tree


def health(addr: str, timeout_s: float = 1.0) -> dict[str, Any] | None:
    """The node's ``GET /health`` body, or None when it does not answer."""
    try:
        status, body = http_json(addr, "GET", "/health", timeout_s=timeout_s)
    except OSError:
        return None
    return body if status == 200 and isinstance(body, dict) else None


class NodeProcess:
    """One node's process group. Not thread-safe: the nemesis thread alone drives it."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def id(self) -> str:
        """The node id."""
        return self.spec.id

    def start(self) -> None:
        """Start the node in a new session, appending its output to its log."""
        if self.is_running():
            return
        env = {**os.environ, **self.spec.env}
        with open(self.spec.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.spec.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        self.paused = False

    def is_running(self) -> bool:
        """True while the process we started has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            signal_tree(self.proc.pid, signum)

    def kill(self) -> None:
        """kill -9 every process of the node (a crash), and reap the supervisor."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.paused = False

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` if the node is still there."""
        if not self.is_running():
            return
        if self.paused:
            self.resume()
        self._signal(signal.SIGTERM)
        assert self.proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace_s)
        self.kill()

    def pause(self) -> None:
        """SIGSTOP the whole node: it keeps its sockets but answers nothing."""
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        self._signal(signal.SIGCONT)
        self.paused = False

    def restart(self) -> None:
        """Kill if needed, then start again on the same data directory."""
        self.kill()
        self.start()


def find_leader(nodes: list[NodeProcess], timeout_s: float = 1.0) -> str | None:
    """The id of the node that says it leads at the highest term, if any answers so."""
    best: tuple[int, str] | None = None
    for node in nodes:
        if node.paused or not node.is_running():
            continue
        body = health(node.spec.http_addr, timeout_s)
        if body and body.get("role") == "leader" and isinstance(body.get("term"), int):
            candidate = (body["term"], node.id)
            best = max(best, candidate) if best else candidate
    return best[1] if best else None
