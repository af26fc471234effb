"""scripts/cluster.sh, scripts/demo-failover.sh and scripts/demo-basic.sh on a real local
cluster: the configs of conf/cluster-3 with every port moved to a free one, data in tmp_path."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue.testing import free_ports
from dqueue.testing.processes import health, signal_tree
from dqueue.testing.waits import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """DQ_CONF_DIR with the repository's 3-node configs on free ports, DQ_RUN_DIR in tmp_path;
    every node still running at the end is killed by PID."""
    conf_dir, run_dir = tmp_path / "conf", tmp_path / "run"
    conf_dir.mkdir()
    sources = sorted((ROOT / "conf" / "cluster-3").glob("*.toml"))
    text = {p.name: p.read_text() for p in sources}
    ports = sorted({int(p) for t in text.values() for p in re.findall(r"127\.0\.0\.1:(\d+)", t)})
    mapping = dict(zip(ports, free_ports(len(ports)), strict=True))
    for name, body in text.items():
        body = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{mapping[int(m[1])]}", body)
        (conf_dir / name).write_text(body)
    env = {**os.environ, "DQ_CONF_DIR": str(conf_dir), "DQ_RUN_DIR": str(run_dir)}
    try:
        yield env
    finally:
        for pid_file in run_dir.glob("*.pid"):
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline")
            if cmdline.exists() and str(run_dir).encode() in cmdline.read_bytes():
                signal_tree(pid, signal.SIGKILL)


def script(name: str, *args: str, env: dict[str, str], timeout_s: float = 180
           ) -> subprocess.CompletedProcess[str]:
    """Run one of scripts/ and return what it printed."""
    return subprocess.run([str(SCRIPTS / name), *args], env=env, capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)


def status_table(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """`cluster.sh status` parsed into node -> column -> value."""
    out = script("cluster.sh", "status", env=env).stdout.splitlines()
    header = out[0].split()
    return {row.split()[0]: dict(zip(header, row.split(), strict=True)) for row in out[1:]}


def test_cluster_script_and_both_demos(cluster_env, tmp_path):
    """One cluster for everything (starting nodes is the slow part): lifecycle commands, then
    the failover demo and the basic demo against the running cluster, then down."""
    up = script("cluster.sh", "up", env=cluster_env)
    assert up.returncode == 0, up.stdout + up.stderr
    table = status_table(cluster_env)
    assert sorted(table) == ["n1", "n2", "n3"]
    assert [row["role"] for row in table.values()].count("leader") == 1
    assert {row["state"] for row in table.values()} == {"up"}
    assert {row["lag"] for row in table.values()} == {"0"}
    # Secured by default: keys made on the first start, every node runs with its own.
    run_dir = Path(cluster_env["DQ_RUN_DIR"])
    for node, row in table.items():
        assert (run_dir / "keys" / node / f"{node}.key_secret").exists()
        cmdline = Path(f"/proc/{row['pid']}/cmdline").read_bytes()
        assert f"--secure-dir={run_dir / 'keys' / node}".encode() in cmdline

    leader = script("cluster.sh", "leader", env=cluster_env).stdout.strip()
    follower = next(n for n in table if n != leader)
    pid = int(table[follower]["pid"])
    assert script("cluster.sh", "pause", follower, env=cluster_env).returncode == 0
    assert status_table(cluster_env)[follower]["state"] == "paused"
    assert script("cluster.sh", "resume", follower, env=cluster_env).returncode == 0
    assert status_table(cluster_env)[follower]["state"] == "up"

    killed = script("cluster.sh", "kill", follower, env=cluster_env)
    assert "killed" in killed.stdout
    assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(
        f"/proc/{pid}/cmdline").read_bytes()
    assert status_table(cluster_env)[follower]["state"] == "down"

    assert script("cluster.sh", "restart", follower, env=cluster_env).returncode == 0
    addr = status_table(cluster_env)[follower]["http"]
    back = wait_until(lambda: (health(addr) or {}).get("leader_id") == leader, 60, 0.2)
    assert back, script("cluster.sh", "logs", follower, env=cluster_env).stdout
    logs = script("cluster.sh", "logs", follower, "-n", "5", env=cluster_env).stdout
    assert f"{follower}.log" in logs
    urls = script("cluster.sh", "urls", env=cluster_env).stdout.strip().split(",")
    assert len(urls) == 3 and all(u.startswith("http://127.0.0.1:") for u in urls)

    # The failover demo: kill -9 the leader, a new one is elected, nothing is lost.
    figures = tmp_path / "failover.json"
    done = script("demo-failover.sh", "--runs", "1", "--tasks", "10", "--json", str(figures),
                  env=cluster_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10/10 enqueued tasks present" in done.stdout
    assert "rejoined as a follower" in done.stdout
    summary = json.loads(figures.read_text())
    (only,) = summary["rounds"]
    assert only["killed"] == leader
    assert only["new_leader"] != only["killed"]
    assert only["new_term"] > only["old_term"]
    assert summary["lost"] == 0
    assert 0 < only["election_s"] < 30
    assert {row["state"] for row in status_table(cluster_env).values()} == {"up"}

    # The basic demo: enqueue with the CLI, a worker completes everything.
    done = script("demo-basic.sh", env=cluster_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("enqueued ") == 6
    after = done.stdout.split("== stats after the worker", 1)[1]
    assert re.search(r"email\s+0\s+5\s+0\s+0\s+0", after), after
    assert re.search(r"sleep\s+0\s+1\s+0\s+0\s+0", after), after
    assert "stopping the cluster" not in done.stdout  # it found the cluster running

    down = script("cluster.sh", "down", env=cluster_env)
    assert down.returncode == 0
    assert {row["state"] for row in status_table(cluster_env).values()} == {"down"}
