"""The worker resources (dqueue/api/workers.py) over the real queue state machine."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.queue import fields

BEAT = {"worker_id": "w1", "host": "box-1", "pid": 4242, "transport": "http",
        "queues": ["default"], "types": ["email"], "concurrency": 4, "in_flight": 1,
        "started_at": "2025-11-27T19:47:00Z", "heartbeat_seconds": 2}


def test_a_heartbeat_lists_the_worker(client: Any, fake: Any) -> None:
    assert client.simulate_get("/workers").json == {"workers": []}
    resp = client.simulate_post("/workers/heartbeat", json=BEAT)
    assert resp.status_code == 200, resp.json
    assert fake.commands[-1]["op"] == "worker_heartbeat"
    assert fake.commands[-1]["heartbeat_ms"] == 2_000
    assert fake.commands[-1]["started_at_ms"] == 1_764_272_820_000
    (listed,) = client.simulate_get("/workers").json["workers"]
    assert listed == resp.json["worker"]
    assert listed == {
        "worker_id": "w1", "host": "box-1", "pid": 4242, "transport": "http",
        "queues": ["default"], "types": ["email"], "concurrency": 4, "in_flight": 1,
        "started_at": "2025-11-27T19:47:00.000Z", "heartbeat_seconds": 2.0,
        "first_seen_at": "2025-11-27T19:48:00.123Z",
        "last_heartbeat_at": "2025-11-27T19:48:00.123Z",
        "expires_at": "2025-11-27T19:48:06.123Z", "heartbeats": 1}


def test_a_leaving_heartbeat_drops_the_worker(client: Any) -> None:
    client.simulate_post("/workers/heartbeat", json=BEAT)
    resp = client.simulate_post("/workers/heartbeat", json={**BEAT, "leaving": True})
    assert resp.status_code == 200 and resp.json == {"worker": None}
    assert client.simulate_get("/workers").json == {"workers": []}


def test_workers_are_sorted_by_id(client: Any) -> None:
    for worker_id in ("zeta", "alpha", "mid"):
        client.simulate_post("/workers/heartbeat", json={**BEAT, "worker_id": worker_id})
    listed = client.simulate_get("/workers").json["workers"]
    assert [item["worker_id"] for item in listed] == ["alpha", "mid", "zeta"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"worker_id": None}, "worker_id"),
    ({"worker_id": "x" * 257}, "worker_id"),
    ({"host": ""}, "host"),
    ({"pid": "42"}, "pid"),
    ({"pid": -5}, "pid"),
    ({"transport": "carrier-pigeon"}, "transport"),
    ({"queues": "default"}, "queues"),
    ({"queues": ["no spaces"]}, "queues[0]"),
    ({"types": [7]}, "types[0]"),
    ({"concurrency": 0}, "concurrency"),
    ({"in_flight": 1.5}, "in_flight"),
    ({"started_at": "yesterday"}, "started_at"),
    ({"started_at": "2025-11-27T19:47:00"}, "started_at"),
    ({"started_at": "1900-01-01T00:00:00Z"}, "started_at"),
    ({"heartbeat_seconds": 0.01}, "heartbeat_seconds"),
    ({"heartbeat_seconds": 3600}, "heartbeat_seconds"),
    ({"leaving": "yes"}, "leaving"),
    ({"colour": "red"}, "colour"),
])
def test_bad_heartbeats_are_400_naming_the_field(client: Any, fake: Any,
                                                 changes: dict[str, Any], field: str) -> None:
    body = {key: value for key, value in {**BEAT, **changes}.items() if value is not None}
    resp = client.simulate_post("/workers/heartbeat", json=body)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["field"] == field
    assert not any(cmd["op"] == "worker_heartbeat" for cmd in fake.commands)


def test_get_workers_takes_no_parameters(client: Any) -> None:
    resp = client.simulate_get("/workers", query_string="queue=default")
    assert resp.status_code == 400 and resp.json["error"]["field"] == "queue"


def test_a_full_table_is_409_naming_worker_id(client: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fields, "MAX_WORKERS", 1)
    assert client.simulate_post("/workers/heartbeat", json=BEAT).status_code == 200
    resp = client.simulate_post("/workers/heartbeat", json={**BEAT, "worker_id": "w2"})
    assert resp.status_code == 409 and resp.json["error"]["code"] == "invalid_state"
    assert "worker_id" in resp.json["error"]["message"]
