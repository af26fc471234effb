"""``dqueue-cli workers`` and ``dqueue-cli tasks list``, tables and JSON, against the real API
app (the real queue state machine behind it) served on 127.0.0.1; and the SDK's calls."""

from __future__ import annotations

import os

import pytest

from dqueue import cli, cli_workers
from dqueue.client.errors import InvalidRequest
from dqueue.client.http_client import Client
from dqueue.client.task import parse_time_ms
from tests.unit.test_cli import run, run_json
from tests.unit.test_cli_queues import server  # noqa: F401  (the fixture)


def _client() -> Client:
    return Client(os.environ["DQUEUE_SERVER"], worker_id="w-http")


def _beat(client: Client, **changes: object) -> dict[str, object] | None:
    fields: dict[str, object] = {"host": "box-1", "concurrency": 4, "heartbeat_seconds": 5,
                                 "queues": ["default"], "types": ["email"], "in_flight": 3,
                                 "pid": 4242, "started_at_ms": 1_764_272_820_000}
    fields.update(changes)
    return client.heartbeat(**fields)  # type: ignore[arg-type]


def test_workers_lists_each_worker_as_a_table_and_as_json(server):  # noqa: F811
    code, out, _ = run("workers")
    assert code == 0 and "no workers" in out
    with _client() as client:
        listed = _beat(client)
        assert listed is not None and listed["worker_id"] == "w-http"
        _beat(client, worker_id="w-zmq-like", host="box-2", queues=["emails", "sms"])
        assert [w["worker_id"] for w in client.workers()] == ["w-http", "w-zmq-like"]
    code, out, _ = run("workers")
    assert code == 0
    header, _, first, second = out.splitlines()
    for column in ("WORKER", "HOST", "PID", "QUEUES", "CONCURRENCY", "IN FLIGHT",
                   "LAST HEARTBEAT"):
        assert column in header
    assert first.split()[:5] == ["w-http", "box-1", "4242", "http", "default"]
    assert "emails,sms" in second
    items = run_json("workers")
    assert items[0]["in_flight"] == 3 and items[0]["heartbeat_seconds"] == 5.0
    assert items[0]["started_at"] == "2025-11-27T19:47:00.000Z"
    with _client() as client:
        assert _beat(client, leaving=True) is None
    assert [w["worker_id"] for w in run_json("workers")] == ["w-zmq-like"]


def test_the_sdk_heartbeat_names_a_bad_field(server):  # noqa: F811
    with _client() as client, pytest.raises(InvalidRequest) as caught:
        _beat(client, concurrency=0)
    assert caught.value.field == "concurrency"


def test_the_workers_view_shows_how_long_ago_each_was_heard() -> None:
    now_ms = parse_time_ms("2026-12-03T16:00:30Z")
    text = cli_workers.workers_view([{
        "worker_id": "w1", "host": "h", "pid": 1, "transport": "zmq", "queues": [],
        "types": [], "concurrency": 2, "in_flight": 0, "started_at": "2026-12-03T15:00:00Z",
        "last_heartbeat_at": "2026-12-03T16:00:27.500Z"}], cli.table, now_ms)
    row = text.splitlines()[2]
    assert row.split()[:8] == ["w1", "h", "1", "zmq", "-", "-", "2", "0"]
    assert row.endswith("2s ago")


def test_tasks_list_leased_shows_who_holds_what(server):  # noqa: F811
    for _ in range(2):
        run_json("enqueue", "--type", "email", "--queue", "default")
    run_json("queue", "create", "other")
    run_json("enqueue", "--type", "sms", "--queue", "other")
    leased = run_json("lease", "--worker-id", "w-7", "--max-tasks", "1", "--lease", "60s")
    run_json("lease", "--worker-id", "w-8", "--queues", "other", "--lease", "60s")
    code, out, _ = run("tasks", "list", "--status", "leased", "--queue", "default")
    assert code == 0
    header, _, row = out.splitlines()
    for column in ("ID", "QUEUE", "WORKER", "LEASE EXPIRES", "LEFT"):
        assert column in header
    assert row.split()[:5] == [leased[0]["id"], "email", "default", "1", "w-7"]
    everywhere = run_json("tasks", "list", "--status", "leased")
    assert sorted(task["lease"]["worker_id"] for task in everywhere) == ["w-7", "w-8"]
    pending = run_json("tasks", "list", "--status", "pending", "--type", "email")
    assert len(pending) == 1 and pending[0]["status"] == "pending"
    code, out, _ = run("tasks", "list", "--status", "pending")
    assert code == 0 and "STATUS" in out and "pending" in out


def test_tasks_list_refuses_bad_flags(server):  # noqa: F811
    code, _, _ = run("tasks", "list", "--status", "sleeping")
    assert code == cli.EXIT_USAGE
    code, _, err = run("tasks", "list", "--status", "leased", "--limit", "0")
    assert code == cli.EXIT_USAGE and "--limit" in err
    code, _, err = run("tasks", "list", "--status", "leased", "--queue", "no such")
    assert code != 0 and "queue" in err
