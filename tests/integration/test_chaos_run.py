"""The CI chaos run: 30 s of faults (leader kills, a pause, a partition) on a real cluster in
network namespaces, then the history checker's verdict."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dqueue.chaos.history import EventType, Op, load

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_short_chaos_run_keeps_every_guarantee(tmp_path):
    out = tmp_path / "chaos"
    done = subprocess.run(
        [str(ROOT / "scripts" / "chaos-test.sh"), "--duration", "30", "--interval", "10",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    report_text = (out / "report.txt").read_text() if (out / "report.txt").exists() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    assert report["valid"], report_text
    # Every fault kind the CI run promises was really injected.
    assert report["faults"].get("kill-leader", 0) >= 2, report_text
    assert report["faults"].get("pause", 0) >= 1, report_text
    assert report["faults"].get("partition", 0) >= 1, report_text
    assert report["nemesis_errors"] == []
    # The guarantees, spelled out (valid already implies them).
    assert report["lost"] == [] and report["completed_twice"] == []
    assert report["unexpected"] == [] and report["redelivered_after_ack"] == []
    # The run did real work through the faults, and the cluster really changed leaders.
    assert report["acknowledged_enqueues"] >= 50, report_text
    assert report["leader_changes"] >= 2, report_text
    events = load(str(out / "history.jsonl"))
    finals = [e for e in events if e.f is Op.FINAL and e.type is EventType.OK]
    assert len({e.value["id"] for e in finals}) >= report["acknowledged_enqueues"]
    assert all(e.value["status"] == "completed" for e in finals), report_text


def test_chaos_script_refuses_to_run_without_namespaces(tmp_path):
    """In a user namespace (root there, but no privilege on the host) ``ip netns add`` fails:
    the script says so and exits 2, and runs nothing."""
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", str(ROOT / "scripts" / "chaos-test.sh"),
         "--duration", "1", "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot create network namespaces: 'ip netns add' failed" in done.stderr
    assert "refusing to run" in done.stderr
    assert not (tmp_path / "x").exists()
