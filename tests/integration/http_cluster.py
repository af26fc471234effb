"""Helpers for the HTTP integration tests and the HTTP benchmark: whole nodes on loopback.

``NodeSet`` starts ``python -m dqueue.supervisor`` (the program behind ``bin/dqueue``) once per
member, with free ports and data directories under a directory the caller owns, waits for
conditions with deadlines (never fixed sleeps), and stops every process it started by PID:
SIGTERM to each supervisor, then SIGKILL to anything of the node still alive.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Generous: on a loaded 2-core machine a node takes 10 to 15 s to start.
DEADLINE_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it: bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            last_error, value = exc, None
        if value:
            return value
        time.sleep(0.05)  # polling interval of a deadline wait, not a fixed wait
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error!r})")


class Http:
    """A keep-alive JSON client of one node (one connection; not for concurrent use)."""

    def __init__(self, addr: str, timeout_s: float = 30.0) -> None:
        host, _, port = addr.rpartition(":")
        self.addr = addr
        self._conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """Send one request; return status, headers and the parsed JSON body (or text)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = dict(headers or {})
        if data is not None and "Content-Type" not in sent:
            sent["Content-Type"] = "application/json"
        try:
            self._conn.request(method, path, body=data, headers=sent)
            resp = self._conn.getresponse()
        except (OSError, http.client.HTTPException):
            self._conn.close()
            raise
        payload = resp.read()
        got_headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.getheader("Connection", "").lower() == "close":
            self._conn.close()
        if "json" in got_headers.get("content-type", "") and payload:
            return resp.status, got_headers, json.loads(payload)
        return resp.status, got_headers, payload.decode(errors="replace")

    def close(self) -> None:
        self._conn.close()


def children_of(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class NodeSet:
    """One or more dqueue nodes (supervisor + Raft + API processes each) on loopback.

    Args:
        root: a directory owned by the caller (pytest's tmp_path).
        size: number of members.
        extra_toml: more TOML appended to every member's configuration file.
        start: which members to start now (default all).
    """

    def __init__(
        self, root: Path, size: int, extra_toml: str = "", start: list[str] | None = None
    ) -> None:
        self.root = root
        self.ids = [f"n{i + 1}" for i in range(size)]
        self.http = {i: f"127.0.0.1:{free_port()}" for i in self.ids}
        raft = {i: f"127.0.0.1:{free_port()}" for i in self.ids}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.children: dict[str, list[int]] = {}
        self.configs: dict[str, Path] = {}
        for node_id in self.ids:
            lines = [
                f'id = "{node_id}"', f'data_dir = "{root / node_id}"',
                f'http_addr = "{self.http[node_id]}"', f'raft_addr = "{raft[node_id]}"',
                f'worker_addr = "127.0.0.1:{free_port()}"', "bootstrap = true",
                'log_format = "json"', "[peers]",
                *(f'{i} = "{raft[i]}"' for i in self.ids),
                "[peers_http]", *(f'{i} = "{self.http[i]}"' for i in self.ids),
                extra_toml,
            ]
            path = root / f"{node_id}.toml"
            path.write_text("\n".join(lines) + "\n")
            self.configs[node_id] = path
        for node_id in start if start is not None else self.ids:
            self.start(node_id)

    def start(self, node_id: str) -> None:
        """Start one member's supervisor (logs go to ``<root>/<id>.log``)."""
        log = open(self.root / f"{node_id}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[node_id] = subprocess.Popen(
            [sys.executable, "-m", "dqueue.supervisor", "--config", str(self.configs[node_id])],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
        )
        log.close()

    def health(self, node_id: str) -> dict[str, Any] | None:
        """GET /health of a member, or None when it does not answer 200."""
        client = Http(self.http[node_id], timeout_s=2)
        try:
            status, _, body = client.call("GET", "/health")
        finally:
            client.close()
        return body if status == 200 else None

    def wait_leader(self, members: list[str] | None = None) -> str:
        """Wait until the given members (default: all started) agree on one leader."""
        members = members or list(self.procs)

        def agreed() -> str | None:
            leaders = {(self.health(m) or {}).get("leader_id") for m in members}
            return leaders.pop() if len(leaders) == 1 and None not in leaders else None

        leader = wait_for(agreed, "a leader known to every member")
        for node_id in members:
            self.children[node_id] = children_of(self.procs[node_id].pid)
        return leader

    def api_pid(self, node_id: str) -> int | None:
        """The PID of a member's API process."""
        for pid in children_of(self.procs[node_id].pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"dqueue.api" in cmdline:
                return pid
        return None

    def stop(self, node_id: str, timeout_s: float = 30.0) -> int | None:
        """SIGTERM a member's supervisor and wait; SIGKILL it and its children past the deadline.

        Returns:
            The supervisor's exit status (None if it had to be killed).
        """
        proc = self.procs.get(node_id)
        if proc is None:
            return None
        known = set(self.children.get(node_id, [])) | set(children_of(proc.pid))
        code: int | None = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        else:
            code = proc.returncode
        for pid in known:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
        return code

    def close(self) -> None:
        """Stop every member (by PID); safe to call twice."""
        for node_id in list(self.procs):
            self.stop(node_id)
