"""--pool processes: child command lines, and a parent with two children against a fake server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dqueue.testing import wait_for
from dqueue.worker.prefork import child_argv
from tests.unit.client.fakes import FakeHttpServer

REPO = Path(__file__).resolve().parents[3]


def test_child_argv_replaces_the_pool_options():
    argv = ["--server", "http://x:1", "--pool", "processes", "--concurrency=3",
            "--worker-id", "w", "--types", "email", "--prefetch", "5"]
    got = child_argv(argv, 1, "w", 5)
    assert got[:3] == [sys.executable, "-m", "dqueue.worker.main"]
    assert got[3:] == ["--server", "http://x:1", "--types", "email", "--pool", "threads",
                       "--concurrency", "1", "--worker-id", "w-1", "--prefetch", "5"]
    # With worker keys every child is the key's worker: the gateway accepts no other id.
    assert child_argv(argv, 1, "w", 5, same_id=True)[-4:] == ["--worker-id", "w",
                                                              "--prefetch", "5"]


def test_two_processes_share_the_work_and_drain_on_sigterm():
    with FakeHttpServer() as server:
        for i in range(20):
            server.queue.enqueue("noop", i)
        parent = subprocess.Popen(
            [sys.executable, "-m", "dqueue.worker.main", "-server", server.url, "--pool",
             "processes", "--concurrency", "2", "--worker-id", "pf", "--types", "noop",
             "--wait", "300ms"],
            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: server.queue.counts()["completed"] == 20, 30)
            leasers = {body["worker_id"] for method, path, body in server.requests
                       if path == "/tasks/lease"}
            assert leasers == {"pf-0", "pf-1"}
            assert {worker for _, worker in server.queue.acks} <= {"pf-0", "pf-1"}
            parent.send_signal(signal.SIGTERM)
            assert parent.wait(30) == 0  # it waits for both children to drain
        finally:
            if parent.poll() is None:
                # Twice: the parent passes it on and its children stop at once.
                parent.send_signal(signal.SIGTERM)
                parent.send_signal(signal.SIGTERM)
                try:
                    parent.wait(10)
                except subprocess.TimeoutExpired:
                    parent.kill()
                    parent.wait(10)
