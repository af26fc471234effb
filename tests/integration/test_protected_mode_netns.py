"""Protected mode seen from a non-loopback address: a node and a client in two namespaces.

The test makes its own namespaces (``dqueue.chaos.netns``): ``srv`` and ``cli`` joined by a
bridge, at 10.250.N.1 and 10.250.N.2 (addresses that exist only inside them). The node runs in
``srv`` bound to every interface with the seed's spellings (``:8080``, ``:9191``); the client
runs in ``cli`` and so reaches it from 10.250.N.2, never from loopback.

- No credentials: HTTP answers 403 protected_mode (loopback inside ``srv`` is served) and the
  gateway refuses the handshake, saying so.
- A tokens file (added while the node runs): 401 without a token, 200 with one; worker keys:
  admitted with the worker's keys, refused without.
- ``--insecure``: HTTP and the gateway serve the client without credentials.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.chaos import netns
from dqueue.testing import wait_for
from dqueue.testing.processes import NodeProcess, NodeSpec

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

HTTP_PORT, WORKER_PORT = 8080, 9191
PROBE = """
import http.client, json, sys
from dqueue.client.errors import DQueueError
kind, addr, arg = sys.argv[1:4]
host, _, port = addr.rpartition(":")
try:
    if kind == "http":
        conn = http.client.HTTPConnection(host, int(port), timeout=3)
        conn.request("GET", "/stats", headers={"Authorization": "Bearer " + arg} if arg else {})
        resp = conn.getresponse()
        raw = resp.read()
        print(json.dumps({"status": resp.status, "body": json.loads(raw) if raw else None}))
    else:
        from dqueue.client.worker_keys import WorkerKeys
        from dqueue.client.zmq_client import ZmqWorkerClient
        keys = WorkerKeys.from_secure_dir(arg) if arg else None
        client = ZmqWorkerClient("tcp://" + addr, keys=keys, timeout_s=3, retry_deadline_s=0)
        try:
            client.ping()
            print(json.dumps({"ok": True}))
        finally:
            client.close()
except DQueueError as exc:
    print(json.dumps({"ok": False, "code": exc.code, "message": str(exc)}))
except OSError as exc:
    print(json.dumps({"status": 0, "error": repr(exc)}))
"""


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[netns.Topology]:
    reason = netns.unavailable_reason()
    if reason:
        pytest.fail(f"network namespaces are required for the protected-mode test: {reason}")
    topo = netns.subnet_topology(f"dqp{secrets.token_hex(3)}", ["srv", "cli"],
                                 subnet=f"10.250.{random.randint(1, 250)}")
    (tmp_path / "probe.py").write_text(PROBE)
    try:
        netns.create(topo)
        yield topo
    finally:
        netns.destroy(topo)


def cli_tool(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dqueue.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=str(REPO),
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_node(topo: netns.Topology, root: Path, name: str, *flags: str) -> NodeProcess:
    """A node in the ``srv`` namespace on every interface (``:8080``, ``:9191``)."""
    argv = [*topo.exec_prefix("srv"), sys.executable, "-m", "dqueue.supervisor", "--id", "n1",
            "--bootstrap", "--data-dir", str(root / name), "--http-addr", f":{HTTP_PORT}",
            "--worker-addr", f":{WORKER_PORT}", "--raft-addr", "127.0.0.1:9090",
            "--log-format", "text", *flags]
    node = NodeProcess(NodeSpec("n1", f"{topo.addresses['srv']}:{HTTP_PORT}", argv,
                                str(root / f"{name}.log"),
                                env={"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}))
    node.start()
    return node


def probe(topo: netns.Topology, root: Path, kind: str, arg: str = "",
          source: str = "cli") -> dict[str, Any]:
    """One request from a namespace: ``http`` (GET /stats) or ``zmq`` (a ping)."""
    host = "127.0.0.1" if source == "srv" else topo.addresses["srv"]
    port = HTTP_PORT if kind == "http" else WORKER_PORT
    done = subprocess.run([*topo.exec_prefix(source), sys.executable, str(root / "probe.py"),
                           kind, f"{host}:{port}", arg], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_credentials_is_protected_and_insecure_opens_both_ports(topology, tmp_path):
    node = start_node(topology, tmp_path, "protected")
    try:
        refused = wait_for(lambda: (r := probe(topology, tmp_path, "http"))["status"] == 403
                           and r, 60, "the protected node to answer")
        error = refused["body"]["error"]
        assert error["code"] == "protected_mode"
        assert "dqueue-cli tokens add" in error["message"] and "--insecure" in error["message"]
        assert probe(topology, tmp_path, "http", source="srv")["status"] == 200  # loopback
        gateway = probe(topology, tmp_path, "zmq")
        assert gateway["ok"] is False and "protected mode" in gateway["message"]
        assert probe(topology, tmp_path, "zmq", source="srv")["ok"] is True
        log = (tmp_path / "protected.log").read_text()
        assert f'port_mode port="http" addr="0.0.0.0:{HTTP_PORT}" mode="protected"' in log
        assert 'port_mode port="worker"' in log and 'port_mode port="peer"' in log
        assert log.count('mode="protected"') == 3
    finally:
        node.kill()
    node = start_node(topology, tmp_path, "insecure", "--insecure")
    try:
        opened = wait_for(lambda: (r := probe(topology, tmp_path, "http"))["status"] == 200
                          and r, 60, "the insecure node to answer")
        assert "tasks" in opened["body"]
        assert probe(topology, tmp_path, "zmq")["ok"] is True
        assert 'mode="open"' in (tmp_path / "insecure.log").read_text()
    finally:
        node.kill()


def test_tokens_and_worker_keys_admit_a_remote_client(topology, tmp_path):
    cli_tool("keys", "init", str(tmp_path / "keys"), "--members", "n1", "--workers", "w1")
    secure = tmp_path / "keys" / "n1"
    node = start_node(topology, tmp_path, "keyed", "--secure-dir", str(secure))
    try:
        wait_for(lambda: probe(topology, tmp_path, "http")["status"] == 403, 60,
                 "the node without tokens to refuse the remote client")
        token = json.loads(cli_tool("--json", "tokens", "add", "remote", "--roles", "read",
                                    "--secure-dir", str(secure)))["token"]
        wait_for(lambda: probe(topology, tmp_path, "http")["status"] == 401, 20,
                 "the new tokens file to be read")
        assert probe(topology, tmp_path, "http", token)["status"] == 200
        assert probe(topology, tmp_path, "http", "dq_forged")["status"] == 401
        assert probe(topology, tmp_path, "zmq", str(tmp_path / "keys" / "w1"))["ok"] is True
        refused = probe(topology, tmp_path, "zmq")
        assert refused["ok"] is False and "requires CURVE keys" in refused["message"]
    finally:
        node.kill()
