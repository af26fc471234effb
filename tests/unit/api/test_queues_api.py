"""The named-queue resources (dqueue/api/queues.py) over the real queue state machine."""

from __future__ import annotations

from typing import Any

import pytest


def create(client: Any, name: str, status: int = 201, **settings: Any) -> dict[str, Any]:
    resp = client.simulate_put(f"/queues/{name}", json=settings)
    assert resp.status_code == status, resp.json
    return resp.json


def test_create_show_list_and_the_settings_in_the_apis_units(client, fake):
    made = create(client, "emails", lease_seconds=1.5, max_retries=0, retention_seconds=3600,
                  tags={"team": "growth"})
    assert made["settings"]["lease_seconds"] == 1.5
    assert made["settings"]["retention_seconds"] == 3600
    assert made["settings"]["backoff_base_seconds"] is None  # follows the node
    assert made["counts"]["pending"] == 0 and made["depth"] == 0
    assert fake.commands[-1]["settings"]["lease_ms"] == 1_500
    assert create(client, "emails", 200, lease_seconds=1.5, max_retries=0,
                  retention_seconds=3600, tags={"team": "growth"})["name"] == "emails"
    again = client.simulate_put("/queues/emails", json={"max_retries": 2})
    assert again.status_code == 409 and again.json["error"]["code"] == "queue_exists"
    listed = client.simulate_get("/queues").json["queues"]
    assert [q["name"] for q in listed] == ["default", "emails"]
    assert [q["name"] for q in client.simulate_get("/queues?prefix=em").json["queues"]] == [
        "emails"]
    shown = client.simulate_get("/queues/emails").json
    assert shown["settings"]["tags"] == {"team": "growth"} and shown["dead_letter_sources"] == []


def test_tasks_go_to_their_queue_and_leases_take_only_from_the_named_ones(client):
    create(client, "emails")
    in_emails = client.simulate_post("/tasks", json={"type": "t", "queue": "emails"}).json
    in_default = client.simulate_post("/tasks", json={"type": "t"}).json
    assert (in_emails["queue"], in_default["queue"]) == ("emails", "default")
    batch = client.simulate_post("/tasks/batch", json={"tasks": [
        {"type": "t", "queue": "emails"}, {"type": "t"}]})
    assert [t["queue"] for t in batch.json["tasks"]] == ["emails", "default"]
    leased = client.simulate_post("/tasks/lease", json={
        "worker_id": "w", "queues": ["emails"], "max_tasks": 10}).json["tasks"]
    assert {t["queue"] for t in leased} == {"emails"} and len(leased) == 2
    plain = client.simulate_post("/tasks/lease", json={"worker_id": "w", "max_tasks": 10})
    assert {t["queue"] for t in plain.json["tasks"]} == {"default"}
    listed = client.simulate_get("/tasks", params={"status": "leased", "queue": "emails"})
    assert len(listed.json["tasks"]) == 2
    stats = client.simulate_get("/stats").json
    assert stats["by_queue"]["emails"]["leased"] == 2


def test_a_dead_letter_moves_to_the_target_and_back(client):
    create(client, "jobs-dlq")
    create(client, "jobs", max_retries=0, dead_letter_queue="jobs-dlq")
    task_id = client.simulate_post("/tasks", json={"type": "t", "queue": "jobs"}).json["id"]
    leased = client.simulate_post("/tasks/lease", json={"worker_id": "w", "queues": ["jobs"]})
    nacked = client.simulate_post(f"/tasks/{task_id}/nack", json={
        "worker_id": "w", "lease_token": leased.json["lease"]["token"], "reason": "boom"}).json
    assert (nacked["queue"], nacked["status"], nacked["source_queue"]) == (
        "jobs-dlq", "pending", "jobs")
    assert client.simulate_get("/queues/jobs-dlq").json["dead_letter_sources"] == ["jobs"]
    moved = client.simulate_post("/queues/jobs-dlq/move")
    assert moved.json == {"moved": 1}
    back = client.simulate_get(f"/tasks/{task_id}").json
    assert (back["queue"], back["attempts"], back["last_error"]) == ("jobs", 0, "boom")


def test_patch_purge_and_delete(client):
    create(client, "q1", lease_seconds=10)
    patched = client.simulate_patch("/queues/q1", json={"lease_seconds": None, "max_depth": 1})
    assert patched.json["settings"]["lease_seconds"] is None
    assert patched.json["settings"]["max_depth"] == 1
    assert client.simulate_post("/tasks", json={"type": "t", "queue": "q1"}).status_code == 201
    full = client.simulate_post("/tasks", json={"type": "t", "queue": "q1"})
    assert full.status_code == 429 and full.json["error"]["code"] == "queue_full"
    assert client.simulate_post("/queues/q1/purge").json == {"purged": 1}
    client.simulate_post("/tasks", json={"type": "t", "queue": "q1"})
    assert client.simulate_delete("/queues/q1").json == {"deleted": "q1", "tasks_deleted": 1}
    gone = client.simulate_get("/queues/q1")
    assert gone.status_code == 404 and gone.json["error"]["code"] == "queue_not_found"


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "field"), [
    ("PUT", "/queues/bad name", {}, 404, "queue_not_found", "name"),
    ("PUT", "/queues/q", {"colour": 1}, 400, "unknown_field", "colour"),
    ("PUT", "/queues/q", {"lease_seconds": -1}, 400, "invalid_field", "lease_seconds"),
    ("PUT", "/queues/q", {"max_retries": 1001}, 400, "invalid_field", "max_retries"),
    ("PUT", "/queues/q", {"retention_seconds": 1}, 400, "invalid_field", "retention_seconds"),
    ("PUT", "/queues/q", {"tags": {"k": 1}}, 400, "invalid_field", "tags"),
    ("PUT", "/queues/q", {"dead_letter_queue": "nowhere"}, 404, "queue_not_found",
     "settings.dead_letter_queue"),
    ("PUT", "/queues/q", {"dead_letter_queue": "q"}, 400, "invalid_field",
     "settings.dead_letter_queue"),
    ("PATCH", "/queues/default", {}, 400, "invalid_field", "body"),
    ("PATCH", "/queues/missing", {"max_retries": 1}, 404, "queue_not_found", "name"),
    ("DELETE", "/queues/default", None, 400, "invalid_field", "name"),
    ("POST", "/queues/default/move", {"destination": "default"}, 400, "invalid_field",
     "destination"),
    ("POST", "/tasks", {"type": "t", "queue": "missing"}, 404, "queue_not_found",
     "tasks[0].queue"),
    ("POST", "/tasks", {"type": "t", "queue": "a b"}, 400, "invalid_field", "queue"),
    ("POST", "/tasks/lease", {"worker_id": "w", "queues": []}, 400, "invalid_field", "queues"),
    ("POST", "/tasks/lease", {"worker_id": "w", "queues": ["missing"]}, 404,
     "queue_not_found", "queues"),
])
def test_bad_input_is_named_and_changes_nothing(client, fake, method, path, body, status,
                                                code, field):
    state = fake.queue.state

    def contents() -> Any:  # what a refused request must not change (the clock may move)
        return {k: v for k, v in state.stats().items() if k != "clock_ms"}, state.list_queues()

    before = contents()
    resp = client.simulate_request(method, path, json=body)
    assert resp.status_code == status, resp.json
    assert resp.json["error"]["code"] == code
    assert resp.json["error"]["field"] == field
    assert contents() == before
