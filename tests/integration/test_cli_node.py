"""bin/dqueue-cli against a real node: the seed's commands as written, JSON output, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue.testing.cluster import NodeCluster

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[NodeCluster]:
    cluster = NodeCluster(tmp_path_factory.mktemp("cli-node"), 1)
    try:
        cluster.start()
        cluster.leader()
        yield cluster
    finally:
        cluster.close()


def cli(node: NodeCluster, *args: str, env_server: bool = True,
        wrapper: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI (through bin/dqueue-cli when ``wrapper``, else ``python -m dqueue.cli``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DQUEUE_SERVER", None)
    if env_server:
        env["DQUEUE_SERVER"] = node.url("n1")
    argv = [str(Path(REPO) / "bin" / "dqueue-cli")] if wrapper else [sys.executable, "-m",
                                                                     "dqueue.cli"]
    return subprocess.run([*argv, *args], env=env, capture_output=True, text=True, timeout=60)


def test_seed_commands_as_written(node):
    done = cli(node, "enqueue", "-type", "email", "-payload", '{"to":"user@example.com"}',
               wrapper=True)
    assert done.returncode == 0, done.stderr
    task_id = next(line.split()[1] for line in done.stdout.splitlines()
                   if line.startswith("id "))
    shown = cli(node, "--json", "status", task_id)
    assert shown.returncode == 0
    task = json.loads(shown.stdout)
    assert task["payload"] == {"to": "user@example.com"} and task["status"] == "pending"
    stats = json.loads(cli(node, "stats", "--json").stdout)
    assert stats["by_type"]["email"]["pending"] >= 1
    health = cli(node, "--server", node.url("n1"), "health", env_server=False)
    assert health.returncode == 0 and "leader" in health.stdout
    cluster = cli(node, "cluster", "status")
    assert cluster.returncode == 0 and cluster.stdout.startswith("leader: n1")


def test_worker_commands_and_dead_letters(node):
    task_id = json.loads(cli(node, "--json", "enqueue", "--type", "cli-dlq").stdout)["id"]
    leased = json.loads(cli(node, "--json", "lease", "-worker-id", "me",
                            "-types", "cli-dlq").stdout)
    assert [t["id"] for t in leased] == [task_id]
    nacked = cli(node, "--json", "nack", task_id, "-worker-id", "me", "-lease-token",
                 leased[0]["lease"]["token"], "-reason", "bad", "-dead-letter")
    assert nacked.returncode == 0 and json.loads(nacked.stdout)["status"] == "dead"
    listed = cli(node, "dlq", "list", "-type", "cli-dlq")
    assert task_id in listed.stdout and "bad" in listed.stdout
    assert json.loads(cli(node, "--json", "dlq", "redrive", task_id).stdout) == {"redriven": 1}
    leased = json.loads(cli(node, "--json", "lease", "-worker-id", "me",
                            "-types", "cli-dlq").stdout)
    token = leased[0]["lease"]["token"]
    acked = cli(node, "ack", task_id, "-worker-id", "me", "-lease-token", token)
    assert acked.returncode == 0 and "completed" in acked.stdout


def test_error_exits(node):
    missing = cli(node, "status", "no-such-task")
    assert missing.returncode == 4 and "not_found" in missing.stderr
    task_id = json.loads(cli(node, "--json", "enqueue", "-type", "cli-err").stdout)["id"]
    conflict = cli(node, "ack", task_id, "-worker-id", "nobody", "-lease-token", "1.0")
    assert conflict.returncode == 5 and "lease_conflict" in conflict.stderr
    bad = cli(node, "enqueue", "-type", "cli-err", "-priority", "high")
    assert bad.returncode == 2
    invalid = cli(node, "enqueue", "-type", "bad type!")
    assert invalid.returncode == 1 and "type" in invalid.stderr
