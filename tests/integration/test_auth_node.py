"""Bearer tokens and roles on a real node: over HTTP, through the SDK, the CLI and dqueue-worker.

One node on 127.0.0.1 with a secure folder whose tokens are made by ``dqueue-cli tokens add``
(a real subprocess, as an operator runs it); every request is real HTTP to the real API process.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue.client import Client, Forbidden, Unauthorized
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster
from dqueue.tokens import ROLES

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dqueue.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=str(REPO),
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def add_token(secure: Path, name: str, roles: str) -> str:
    done = cli("--json", "tokens", "add", name, "--roles", roles, "--secure-dir", str(secure))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["token"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeCluster, dict[str, str]]]:
    root = tmp_path_factory.mktemp("auth")
    keys = cli("keys", "init", str(root / "keys"), "--members", "n1")  # a secure folder needs
    assert keys.returncode == 0, keys.stderr                          # the node's key pair
    secure = root / "keys" / "n1"
    tokens = {role: add_token(secure, role, role) for role in ROLES}
    cluster = NodeCluster(root, 1, top={"secure_dir": str(secure)})
    try:
        cluster.start()
        cluster.leader()
        yield cluster, tokens
    finally:
        cluster.close()


def http_call(addr: str, method: str, path: str, body=None, token: str | None = None):
    """One request (with a bearer token when given); returns (status, parsed JSON or None)."""
    host, _, port = addr.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def request(cluster: NodeCluster, method: str, path: str, body=None, token: str | None = None):
    return http_call(cluster.http_addr["n1"], method, path, body, token)


# One route per role, with a body it accepts.
ROUTES = {
    "produce": ("POST", "/tasks", {"type": "email"}),
    "consume": ("POST", "/tasks/lease", {"worker_id": "w1", "types": ["nothing"]}),
    "read": ("GET", "/stats", None),
    "admin": ("DELETE", "/dlq", None),
}


def test_each_role_allowed_and_refused_over_http(node):
    cluster, tokens = node
    for needed, (method, path, body) in ROUTES.items():
        status, err = request(cluster, method, path, body)
        assert status == 401 and err["error"]["code"] == "unauthorized", (path, err)
        status, err = request(cluster, method, path, body, "dq_forged")
        assert status == 401, path
        for role, token in tokens.items():
            status, answer = request(cluster, method, path, body, token)
            if role == needed:
                assert status in (200, 201, 204), (role, path, answer)
            else:
                assert status == 403, (role, path)
                assert answer["error"]["code"] == "forbidden"
                assert f"lacks the role {needed}" in answer["error"]["message"]
    status, body = request(cluster, "GET", "/health")  # open by default
    assert status == 200 and body["node_id"] == "n1"


def test_lease_token_hidden_from_readers(node):
    cluster, tokens = node
    _, task = request(cluster, "POST", "/tasks", {"type": "secret"}, tokens["produce"])
    status, leased = request(cluster, "POST", "/tasks/lease",
                             {"worker_id": "w9", "types": ["secret"]}, tokens["consume"])
    assert status == 200 and leased["lease"]["token"]
    _, seen = request(cluster, "GET", f"/tasks/{task['id']}", token=tokens["read"])
    assert seen["status"] == "leased" and set(seen["lease"]) == {"expires_at"}
    # A reader cannot ack: it has neither the token nor the role.
    status, _ = request(cluster, "POST", f"/tasks/{task['id']}/ack",
                        {"worker_id": "w9", "lease_token": leased["lease"]["token"]},
                        tokens["read"])
    assert status == 403
    status, done = request(cluster, "POST", f"/tasks/{task['id']}/ack",
                           {"worker_id": "w9", "lease_token": leased["lease"]["token"]},
                           tokens["consume"])
    assert status == 200 and done["status"] == "completed"


def test_sdk_with_and_without_a_token(node, monkeypatch):
    cluster, tokens = node
    monkeypatch.delenv("DQUEUE_TOKEN", raising=False)
    with Client(cluster.url("n1")) as anonymous, pytest.raises(Unauthorized) as info:
        anonymous.enqueue("email")
    assert "the server requires a token: pass --token or set DQUEUE_TOKEN" in str(info.value)
    with Client(cluster.url("n1"), token=tokens["read"]) as reader:
        assert reader.stats()["tasks"] is not None
        with pytest.raises(Forbidden) as info:
            reader.enqueue("email")
    assert info.value.role == "produce" and "the token lacks the role produce" in str(info.value)
    monkeypatch.setenv("DQUEUE_TOKEN", tokens["produce"])
    with Client(cluster.url("n1")) as producer:  # the token from the environment
        assert producer.enqueue("email").status.value == "pending"


def test_cli_token_option_and_a_token_added_while_the_node_runs(node):
    cluster, tokens = node
    server = ["--server", cluster.url("n1")]
    refused = cli(*server, "stats", env={"DQUEUE_TOKEN": ""})
    assert refused.returncode == 1
    assert "the server requires a token: pass --token or set DQUEUE_TOKEN" in refused.stderr
    assert cli(*server, "--token", tokens["read"], "stats").returncode == 0
    lacking = cli(*server, "--token", tokens["read"], "enqueue", "--type", "x")
    assert lacking.returncode == 1 and "the token lacks the role produce" in lacking.stderr
    # tokens add on a running node: picked up without a restart (re-read within ~1 s).
    late = add_token(cluster.root / "keys" / "n1", "late", "read,admin")
    wait_for(lambda: cli(*server, "--token", late, "stats").returncode == 0, 20,
             "the new token to be accepted")
    assert cli(*server, "--token", late, "dlq", "purge").returncode == 0
    assert cli("tokens", "rm", "late", "--secure-dir", str(cluster.root / "keys" / "n1")
               ).returncode == 0
    wait_for(lambda: cli(*server, "--token", late, "stats").returncode == 1, 20,
             "the removed token to be refused")


def test_http_worker_with_a_consume_token_drains_and_without_one_exits_saying_why(node):
    cluster, tokens = node
    with Client(cluster.url("n1"), token=tokens["produce"]) as producer:
        ids = [t.id for t in producer.enqueue_many([{"type": "noop"}] * 5)]
    worker = cluster.spawn_worker("--server", cluster.url("n1"), "--token", tokens["consume"],
                                  "--types", "noop", log_name="worker-ok")
    with Client(cluster.url("n1"), token=tokens["read"]) as reader:
        wait_for(lambda: all(reader.get(i).status.value == "completed" for i in ids), 30,
                 "the worker to complete every task")
    worker.terminate()
    assert worker.wait(30) == 0
    refused = cluster.spawn_worker("--server", cluster.url("n1"), "--types", "noop",
                                   log_name="worker-refused")
    assert refused.wait(30) == 1
    assert "the server requires a token: pass --token or set DQUEUE_TOKEN" in (
        cluster.log_text("worker-refused"))


def test_a_malformed_tokens_file_stops_the_node_at_start_saying_where(tmp_path):
    assert cli("keys", "init", str(tmp_path / "keys"), "--members", "n1").returncode == 0
    secure = tmp_path / "keys" / "n1"
    (secure / "tokens.json").write_text('{"version": 1, "tokens": [{"name": "ci"}]}')
    done = subprocess.run(
        [sys.executable, "-m", "dqueue.supervisor", "--id", "n1", "--bootstrap",
         "--data-dir", str(tmp_path / "data"), "--http-addr", "127.0.0.1:1",
         "--secure-dir", str(secure)],
        capture_output=True, text=True, timeout=60, cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert f"{secure / 'tokens.json'}: tokens[0].sha256" in done.stderr, done.stderr
