"""``POST /tasks/{id}/release`` and the gateway's ``release`` message."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.api.worker_requests import RequestError, command_of
from dqueue.config import NodeConfig


def _leased(client: Any) -> dict[str, Any]:
    client.simulate_post("/tasks", json={"type": "email"})
    return client.simulate_post("/tasks/lease", json={"worker_id": "worker-1"}).json


def test_release_hands_the_task_back_without_an_attempt(client, fake):
    task = _leased(client)
    token = task["lease"]["token"]
    assert task["attempts"] == 1
    resp = client.simulate_post(f"/tasks/{task['id']}/release",
                                json={"worker_id": "worker-1", "lease_token": token})
    assert resp.status_code == 200
    assert resp.json["status"] == "pending" and resp.json["attempts"] == 0
    assert fake.commands[-1] == {"op": "release", "id": task["id"], "worker_id": "worker-1",
                                 "token": token}
    again = client.simulate_post("/tasks/lease", json={"worker_id": "worker-2"})
    assert again.status_code == 200 and again.json["id"] == task["id"]


def test_release_by_another_worker_is_409(client):
    task = _leased(client)
    resp = client.simulate_post(f"/tasks/{task['id']}/release", json={
        "worker_id": "worker-2", "lease_token": task["lease"]["token"]})
    assert resp.status_code == 409
    assert resp.json["error"]["code"] == "lease_conflict"


def test_release_without_a_token_is_409_before_anything_is_proposed(client, fake):
    task = _leased(client)
    sent = len(fake.commands)
    resp = client.simulate_post(f"/tasks/{task['id']}/release", json={"worker_id": "worker-1"})
    assert resp.status_code == 409 and resp.json["error"]["field"] == "lease_token"
    assert len(fake.commands) == sent


@pytest.mark.parametrize(("body", "field"), [
    ({}, "worker_id"),
    ({"worker_id": 5, "lease_token": "1.0"}, "worker_id"),
    ({"worker_id": "w", "lease_token": 5}, "lease_token"),
    ({"worker_id": "w", "lease_token": "1.0", "reason": "x"}, "reason"),
])
def test_release_bad_fields_are_400_naming_the_field(client, fake, body, field):
    resp = client.simulate_post("/tasks/abc/release", json=body)
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == field
    assert fake.commands == []


def test_gateway_release_message_becomes_the_command():
    cmd, wait_ms = command_of(b"release", {"rid": 1, "id": "t1", "worker_id": "w",
                                           "token": "abc.0"}, 1_000)
    assert cmd == {"op": "release", "id": "t1", "worker_id": "w", "token": "abc.0"}
    assert wait_ms == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "t1", "worker_id": "w", "token": "abc.0", "lease_ms": 5}, "lease_ms"),
    ({"id": "t1", "worker_id": "w"}, "token"),
    ({"worker_id": "w", "token": "abc.0"}, "id"),
])
def test_gateway_release_message_is_checked(body, field):
    with pytest.raises(RequestError) as info:
        command_of(b"release", body, 1_000)
    assert info.value.field == field


def test_gateway_release_takes_only_the_keys_worker():
    with pytest.raises(RequestError) as info:
        command_of(b"release", {"id": "t1", "worker_id": "w", "token": "abc.0"}, 1_000,
                   worker_name="other")
    assert info.value.code == "forbidden"


def test_ack_with_a_result_keeps_it_and_get_shows_it(client, fake):
    task = _leased(client)
    resp = client.simulate_post(f"/tasks/{task['id']}/ack", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"],
        "result": {"rows": 3}})
    assert resp.status_code == 200 and resp.json["result"] == {"rows": 3}
    assert fake.commands[-1]["result"] == {"rows": 3}
    assert client.simulate_get(f"/tasks/{task['id']}").json["result"] == {"rows": 3}


# The node's api.max_result_bytes at its least (1 KiB), far under the body cap of the fixture.
@pytest.mark.parametrize("config", [NodeConfig(id="n1", max_body_bytes=65_536,
                                               max_result_bytes=1_024,
                                               peers_http={"n1": "127.0.0.1:8081"})])
def test_ack_with_a_result_too_large_is_400_naming_result(client, fake):
    task = _leased(client)
    sent = len(fake.commands)
    resp = client.simulate_post(f"/tasks/{task['id']}/ack", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"],
        "result": "x" * 1_023})  # 1,025 bytes as JSON, quotes included
    assert resp.status_code == 400 and resp.json["error"]["field"] == "result"
    assert "1025 bytes" in resp.json["error"]["message"]
    assert len(fake.commands) == sent
    # Exactly at the limit: kept.
    resp = client.simulate_post(f"/tasks/{task['id']}/ack", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"],
        "result": "x" * 1_022})
    assert resp.status_code == 200 and resp.json["result"] == "x" * 1_022


def test_ack_with_a_result_nested_too_deep_is_400_naming_result(client, fake):
    task = _leased(client)
    sent = len(fake.commands)
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    resp = client.simulate_post(f"/tasks/{task['id']}/ack", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"], "result": deep})
    assert resp.status_code == 400 and resp.json["error"]["field"] == "result"
    assert len(fake.commands) == sent
