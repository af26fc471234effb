"""dqueue-worker's logs from real processes: JSON lines whose first line names the server and the
transport, one line per task event, and a warning within 2 s (then every 10 s) when the server
cannot be reached, over HTTP and ZeroMQ."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.client import Client, TaskStatus
from dqueue.testing import free_port, wait_for
from dqueue.testing.cluster import NodeCluster, child_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WARN_WITHIN_S = 2.0
REPEAT_S = 10.0

APP = textwrap.dedent("""
    from dqueue.worker import Worker

    worker = Worker()

    @worker.task("ok")
    def ok(payload, ctx):
        return payload

    @worker.task("boom")
    def boom(payload, ctx):
        raise KeyError("missing " + str(payload))
""")


def records(path: Path) -> list[dict[str, Any]]:
    """Every line of a worker's log, each of which must be one JSON object."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def ts_s(record: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()


def events(path: Path, name: str) -> list[dict[str, Any]]:
    return [r for r in records(path) if r["event"] == name]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def spawn(tmp_path: Path, name: str, started: list[subprocess.Popen[bytes]],
          *args: str) -> Path:
    log = tmp_path / f"{name}.log"
    with open(log, "ab") as out:
        started.append(subprocess.Popen(
            [sys.executable, "-m", "dqueue.worker.main", *args], stdout=out,
            stderr=subprocess.STDOUT, cwd=str(tmp_path), env={**os.environ, **child_env()},
            start_new_session=True))
    return log


def test_a_server_nobody_listens_on_is_warned_about_within_2_s_then_every_10_s(
        tmp_path, workers):
    http_url = f"http://127.0.0.1:{free_port()}"
    zmq_addr = f"tcp://127.0.0.1:{free_port()}"
    logs = {"http": spawn(tmp_path, "http", workers, "--server", http_url),
            "zmq": spawn(tmp_path, "zmq", workers, "--zmq", zmq_addr)}
    for transport, server in (("http", http_url), ("zmq", zmq_addr)):
        log = logs[transport]
        wait_for(lambda log=log: records(log), 30, f"{transport} worker's first line")
        first = records(log)[0]
        assert first["event"] == "worker_started" and first["process"] == "worker"
        assert first["server"] == [server] and first["transport"] == transport
    for transport, log in logs.items():
        wait_for(lambda log=log: len(events(log, "server_unreachable")) >= 2, 30,
                 f"{transport}: two unreachable warnings")
        first, warnings = records(log)[0], events(log, "server_unreachable")
        assert ts_s(warnings[0]) - ts_s(first) < WARN_WITHIN_S, transport
        gap_s = ts_s(warnings[1]) - ts_s(warnings[0])
        assert REPEAT_S - 0.5 <= gap_s < REPEAT_S + 1.5, (transport, gap_s)
        assert warnings[0]["level"] == "warning" and warnings[0]["transport"] == transport


def test_task_events_are_one_json_line_each(tmp_path):
    (tmp_path / "logapp.py").write_text(APP)
    cluster = NodeCluster(tmp_path, 1, queue={"max_retries": 0})
    try:
        cluster.start()
        cluster.leader()
        client = Client(cluster.url("n1"))
        done_id = client.enqueue("ok", {"n": 1}).id
        dead_id = client.enqueue("boom", 7).id
        proc = cluster.spawn_worker("--server", cluster.url("n1"), "--app", "logapp:worker",
                                    "--wait", "1s", log_name="events")
        assert client.wait(done_id, timeout=30).status is TaskStatus.COMPLETED
        assert client.wait(dead_id, timeout=30).status is TaskStatus.DEAD
        log = tmp_path / "events.log"
        wait_for(lambda: events(log, "task_dead_letter"), 10, "the dead letter logged")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        by_task = {(r["event"], r.get("task_id")): r for r in records(log)}
        for event, task_id in (("task_leased", done_id), ("task_done", done_id),
                               ("task_leased", dead_id), ("task_dead_letter", dead_id)):
            record = by_task[(event, task_id)]
            assert record["queue"] == "default" and record["attempt"] == 1
            assert record["type"] == ("ok" if task_id == done_id else "boom")
        assert by_task[("task_done", done_id)]["duration_ms"] >= 0
        dead = by_task[("task_dead_letter", dead_id)]
        assert dead["error"] == "KeyError: 'missing 7'"
        assert "Traceback" in dead["traceback"] or "in boom" in dead["traceback"]
        assert records(log)[-1]["event"] == "worker_stopped"
    finally:
        cluster.close()
