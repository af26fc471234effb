"""Dead-letter resources: redrive and purge."""

from __future__ import annotations

from typing import Any


def dead_task(client: Any, task_type: str = "email") -> str:
    task_id = client.simulate_post("/tasks", json={"type": task_type}).json["id"]
    task = client.simulate_post("/tasks/lease", json={"worker_id": "w",
                                                      "types": [task_type]}).json
    client.simulate_post(f"/tasks/{task_id}/nack", json={
        "worker_id": "w", "lease_token": task["lease"]["token"], "dead_letter": True})
    return task_id


def test_redrive_all(client, fake):
    dead_task(client)
    dead_task(client, "sms")
    resp = client.simulate_post("/dlq/redrive")
    assert resp.status_code == 200
    assert resp.json == {"redriven": 2}
    assert fake.commands[-1] == {"op": "redrive", "id": None, "type": None}


def test_redrive_one_task(client, fake):
    task_id = dead_task(client)
    dead_task(client)
    resp = client.simulate_post("/dlq/redrive", json={"task_id": task_id})
    assert resp.json == {"redriven": 1}
    assert fake.commands[-1] == {"op": "redrive", "id": task_id, "type": None}


def test_redrive_bad_input(client, fake):
    both = client.simulate_post("/dlq/redrive", json={"task_id": "a", "type": "b"})
    assert both.status_code == 400
    assert both.json["error"]["field"] == "task_id"
    unknown = client.simulate_post("/dlq/redrive", json={"everything": True})
    assert unknown.json["error"]["field"] == "everything"
    assert fake.commands == []


def test_purge_by_type(client, fake):
    dead_task(client, "email")
    dead_task(client, "sms")
    resp = client.simulate_delete("/dlq", params={"type": "sms"})
    assert resp.status_code == 200
    assert resp.json == {"purged": 1}
    assert fake.commands[-1] == {"op": "purge", "type": "sms"}


def test_purge_bad_query(client, fake):
    resp = client.simulate_delete("/dlq", params={"kind": "sms"})
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "kind"
    assert fake.commands == []
