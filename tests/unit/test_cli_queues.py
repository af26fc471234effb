"""``dqueue-cli queue``: every action, tables and JSON, against the real API app (the real queue
state machine behind it) served on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry

from dqueue import cli
from dqueue.api.app import create_app
from dqueue.config import NodeConfig
from tests.unit.api.conftest import FakeRaft
from tests.unit.test_cli import run, run_json


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch) -> Iterator[FakeRaft]:
    fake = FakeRaft()
    config = NodeConfig(id="n1", max_body_bytes=65_536, peers_http={"n1": "127.0.0.1:8081"})
    app = create_app(lambda: fake, config, CollectorRegistry())
    httpd = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DQUEUE_SERVER", f"http://127.0.0.1:{httpd.server_port}")
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_create_list_show_set_move_purge_delete(server):
    assert run_json("queue", "create", "jobs-dlq")["name"] == "jobs-dlq"
    made = run_json("queue", "create", "jobs", "--lease", "90s", "--max-retries", "0",
                    "--dead-letter-queue", "jobs-dlq", "--tag", "team=ops")
    assert made["settings"]["lease_seconds"] == 90 and made["settings"]["tags"] == {
        "team": "ops"}
    code, out, _ = run("queue", "list")
    assert code == 0 and "QUEUE" in out and "jobs-dlq" in out and "90s" in out
    run_json("enqueue", "--type", "t", "--queue", "jobs")
    leased = run_json("lease", "--queues", "jobs", "--worker-id", "w")
    assert leased[0]["queue"] == "jobs"
    run_json("nack", leased[0]["id"], "--worker-id", "w", "--lease-token",
             leased[0]["lease"]["token"], "--reason", "no")
    code, out, _ = run("queue", "show", "jobs-dlq")
    assert code == 0 and "dead letters of: jobs" in out
    assert run_json("queue", "move", "jobs-dlq") == {"moved": 1}
    changed = run_json("queue", "set", "jobs", "--clear", "lease_seconds", "--max-depth", "5")
    assert changed["settings"]["lease_seconds"] is None
    assert changed["settings"]["max_depth"] == 5
    assert run_json("queue", "purge", "jobs") == {"purged": 1}
    assert run_json("queue", "delete", "jobs", "--yes") == {"deleted": "jobs",
                                                             "tasks_deleted": 0}
    assert [q["name"] for q in run_json("queue", "list")] == ["default", "jobs-dlq"]


def test_refusals_say_what_to_do(server):
    code, _, err = run("queue", "delete", "default")
    assert code == cli.EXIT_USAGE and "--yes" in err
    code, _, err = run("queue", "set", "default")
    assert code == cli.EXIT_USAGE and "at least one setting" in err
    code, _, err = run("queue", "create", "q", "--lease", "90")
    assert code == cli.EXIT_USAGE and "duration" in err
    code, _, err = run("queue", "show", "missing")
    assert code == cli.EXIT_NOT_FOUND and "PUT /queues/missing" in err
    code, _, err = run("enqueue", "--type", "t", "--queue", "missing")
    assert code == cli.EXIT_NOT_FOUND and "no queue missing" in err
    run_json("queue", "create", "q", "--max-retries", "1")
    code, _, err = run("queue", "create", "q", "--max-retries", "2")
    assert code == cli.EXIT_CONFLICT and "PATCH" in err
