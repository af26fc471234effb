"""Task resources against the fake Raft client: commands sent, status codes, bodies."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.api.deps import new_task_id, new_task_ids
from dqueue.api.longpoll import LongPollGate
from dqueue.protocol.ipc_client import (
    BadRequest,
    NoLeader,
    RaftClientError,
    RaftUnavailable,
    RequestTimeout,
)


def enqueue(client: Any, **body: Any) -> Any:
    return client.simulate_post("/tasks", json=body)


def test_enqueue_seed_example_returns_201_with_rendered_task(client, fake):
    resp = enqueue(client, type="email", payload={"to": "user@example.com", "subject": "Hello"},
                   priority=10, max_retries=3, idempotency_key="abc")
    assert resp.status_code == 201
    task = resp.json
    assert task["type"] == "email"
    assert task["payload"] == {"to": "user@example.com", "subject": "Hello"}
    assert task["priority"] == 10
    assert task["duplicate"] is False
    assert task["created_at"] == "2025-11-27T19:48:00.123Z"
    assert "created_at_ms" not in task
    assert fake.commands == [{"op": "enqueue", "tasks": [{
        "id": task["id"], "type": "email",
        "payload": {"to": "user@example.com", "subject": "Hello"}, "priority": 10,
        "max_retries": 3, "idempotency_key": "abc",
    }]}]


def test_optional_fields_left_out_are_omitted_from_the_command(client, fake):
    assert enqueue(client, type="a").status_code == 201
    assert enqueue(client, type="b", priority=None, delay_seconds=2).status_code == 201
    assert client.simulate_post("/tasks/batch", json={"tasks": [
        {"type": "c", "payload": None}, {"type": "d", "max_retries": 0, "priority": -1},
    ]}).status_code == 201
    sent = [task for cmd in fake.commands for task in cmd["tasks"]]
    assert [sorted(task) for task in sent] == [
        ["id", "payload", "type"],
        ["delay_ms", "id", "payload", "type"],
        ["id", "payload", "type"],
        ["id", "max_retries", "payload", "priority", "type"],
    ]
    assert sent[3]["max_retries"] == 0 and sent[3]["priority"] == -1


def test_duplicate_idempotency_key_returns_200_with_original(client):
    first = enqueue(client, type="email", idempotency_key="k1").json
    again = enqueue(client, type="email", idempotency_key="k1")
    assert again.status_code == 200
    assert again.json["id"] == first["id"]
    assert again.json["duplicate"] is True


def test_delay_seconds_becomes_delay_ms(client, fake):
    enqueue(client, type="email", delay_seconds=1.5)
    assert fake.commands[0]["tasks"][0]["delay_ms"] == 1500


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "type", "missing_field"),
        ({"type": None}, "type", "missing_field"),
        ({"type": 5}, "type", "invalid_field"),
        ({"type": ""}, "type", "invalid_field"),
        ({"type": "bad type"}, "type", "invalid_field"),
        ({"type": "e", "priority": "high"}, "priority", "invalid_field"),
        ({"type": "e", "priority": 1.5}, "priority", "invalid_field"),
        ({"type": "e", "priority": True}, "priority", "invalid_field"),
        ({"type": "e", "priority": 1 << 40}, "priority", "invalid_field"),
        ({"type": "e", "max_retries": -1}, "max_retries", "invalid_field"),
        ({"type": "e", "max_retries": 100_000}, "max_retries", "invalid_field"),
        ({"type": "e", "idempotency_key": 7}, "idempotency_key", "invalid_field"),
        ({"type": "e", "idempotency_key": "x" * 300}, "idempotency_key", "invalid_field"),
        ({"type": "e", "delay_seconds": -1}, "delay_seconds", "invalid_field"),
        ({"type": "e", "delay_seconds": "5"}, "delay_seconds", "invalid_field"),
        ({"type": "e", "delay_seconds": 1e12}, "delay_seconds", "invalid_field"),
        ({"type": "e", "payload": {"n": 1 << 70}}, "payload", "invalid_field"),
        ({"type": "e", "colour": "red"}, "colour", "unknown_field"),
    ],
)
def test_enqueue_bad_fields_are_400_naming_the_field(client, fake, body, field, code):
    resp = client.simulate_post("/tasks", json=body)
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == field
    assert resp.json["error"]["code"] == code
    assert field in resp.json["error"]["message"]
    assert fake.commands == []


def test_deeply_nested_payload_is_refused(client, fake):
    payload: Any = 1
    for _ in range(40):
        payload = [payload]
    resp = enqueue(client, type="e", payload=payload)
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "payload"
    assert fake.commands == []


def test_batch_enqueues_in_one_command(client, fake):
    resp = client.simulate_post("/tasks/batch", json={"tasks": [
        {"type": "a", "payload": i} for i in range(100)
    ]})
    assert resp.status_code == 201
    assert [t["payload"] for t in resp.json["tasks"]] == list(range(100))
    assert all(t["duplicate"] is False for t in resp.json["tasks"])
    assert len(fake.commands) == 1
    assert len(fake.commands[0]["tasks"]) == 100
    ids = [t["id"] for t in fake.commands[0]["tasks"]]
    assert len(set(ids)) == 100  # each drawn from the app's id source, in order
    assert [t["id"] for t in resp.json["tasks"]] == ids


def test_default_ids_are_128_random_bits_in_hex():
    ids = [*new_task_ids(1_000), new_task_id()]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "tasks"),
        ({"tasks": []}, "tasks"),
        ({"tasks": {"type": "a"}}, "tasks"),
        ({"tasks": [{"type": "a"}] * 1001}, "tasks"),
        ({"tasks": [{"type": "a"}, {"type": "a", "priority": "x"}]}, "tasks[1].priority"),
        ({"tasks": [{"type": "a"}, 3]}, "tasks[1]"),
        ({"tasks": [{"typo": "a"}]}, "tasks[0].typo"),
        ({"tasks": [{"type": "a"}], "extra": 1}, "extra"),
    ],
)
def test_batch_bad_input_is_400_and_nothing_sent(client, fake, body, field):
    resp = client.simulate_post("/tasks/batch", json=body)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["field"] == field
    assert fake.commands == []


def test_lease_returns_task_with_lease_then_204_when_empty(client, fake):
    task_id = enqueue(client, type="email").json["id"]
    resp = client.simulate_post("/tasks/lease", json={"worker_id": "worker-1"})
    assert resp.status_code == 200
    assert resp.json["id"] == task_id
    assert resp.json["status"] == "leased"
    assert resp.json["lease"]["worker_id"] == "worker-1"
    assert resp.json["lease"]["expires_at"] == "2025-11-27T19:48:30.123Z"
    assert fake.commands[-1] == {"op": "lease", "worker_id": "worker-1", "types": None,
                                 "max_tasks": 1, "lease_ms": None}
    empty = client.simulate_post("/tasks/lease", json={"worker_id": "worker-1"})
    assert empty.status_code == 204
    assert empty.content == b""


def test_lease_extensions_reach_the_command(client, fake):
    for _ in range(3):
        enqueue(client, type="img")
    resp = client.simulate_post("/tasks/lease", json={
        "worker_id": "w", "types": ["img", "pdf"], "lease_seconds": 2.5, "wait_seconds": 3,
        "max_tasks": 2,
    })
    assert resp.status_code == 200
    assert len(resp.json["tasks"]) == 2
    assert fake.commands[-1] == {"op": "lease", "worker_id": "w", "types": ["img", "pdf"],
                                 "max_tasks": 2, "lease_ms": 2500}
    assert fake.waits[-1] == 3000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "worker_id"),
        ({"worker_id": 12}, "worker_id"),
        ({"worker_id": "w\n"}, "worker_id"),
        ({"worker_id": "w", "types": "email"}, "types"),
        ({"worker_id": "w", "types": []}, "types"),
        ({"worker_id": "w", "types": ["ok", 3]}, "types[1]"),
        ({"worker_id": "w", "lease_seconds": 0}, "lease_seconds"),
        ({"worker_id": "w", "lease_seconds": 10 ** 9}, "lease_seconds"),
        ({"worker_id": "w", "wait_seconds": 21}, "wait_seconds"),
        ({"worker_id": "w", "wait_seconds": -1}, "wait_seconds"),
        ({"worker_id": "w", "max_tasks": 0}, "max_tasks"),
        ({"worker_id": "w", "max_tasks": 101}, "max_tasks"),
        ({"worker_id": "w", "queue": "x"}, "queue"),
    ],
)
def test_lease_bad_fields(client, fake, body, field):
    resp = client.simulate_post("/tasks/lease", json=body)
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == field
    assert fake.commands == []


def leased(client: Any) -> dict[str, Any]:
    enqueue(client, type="email")
    return client.simulate_post("/tasks/lease", json={"worker_id": "worker-1"}).json


def test_ack_by_holder_completes(client, fake):
    task = leased(client)
    token = task["lease"]["token"]
    resp = client.simulate_post(f"/tasks/{task['id']}/ack",
                                json={"worker_id": "worker-1", "lease_token": token})
    assert resp.status_code == 200
    assert resp.json["status"] == "completed"
    assert fake.commands[-1] == {"op": "ack", "id": task["id"], "worker_id": "worker-1",
                                 "token": token}


def test_ack_by_other_worker_is_409(client):
    task = leased(client)
    resp = client.simulate_post(f"/tasks/{task['id']}/ack", json={
        "worker_id": "worker-2", "lease_token": task["lease"]["token"]})
    assert resp.status_code == 409
    assert resp.json["error"]["code"] == "lease_conflict"


def test_ack_with_token_sends_it(client, fake):
    task = leased(client)
    token = task["lease"]["token"]
    resp = client.simulate_post(f"/tasks/{task['id']}/ack",
                                json={"worker_id": "worker-1", "lease_token": token})
    assert resp.status_code == 200
    assert fake.commands[-1]["token"] == token


def test_ack_unknown_task_is_404(client):
    resp = client.simulate_post("/tasks/nope/ack", json={"worker_id": "w", "lease_token": "1.0"})
    assert resp.status_code == 404
    assert resp.json["error"]["code"] == "not_found"


def test_nack_seed_example(client, fake):
    task = leased(client)
    token = task["lease"]["token"]
    resp = client.simulate_post(f"/tasks/{task['id']}/nack", json={
        "worker_id": "worker-1", "lease_token": token, "reason": "database connection failed"})
    assert resp.status_code == 200
    assert resp.json["status"] == "pending"
    assert resp.json["last_error"] == "database connection failed"
    assert fake.commands[-1] == {"op": "nack", "id": task["id"], "worker_id": "worker-1",
                                 "token": token, "reason": "database connection failed",
                                 "dead_letter": False}


def test_nack_keeps_the_traceback_as_last_traceback(client, fake):
    task = leased(client)
    text = "Traceback (most recent call last):\n  File \"h.py\", line 3\nKeyError: 'k'"
    resp = client.simulate_post(f"/tasks/{task['id']}/nack", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"],
        "reason": "KeyError: 'k'", "traceback": text})
    assert resp.status_code == 200 and resp.json["last_traceback"] == text
    assert fake.commands[-1]["traceback"] == text
    assert client.simulate_get(f"/tasks/{task['id']}").json["last_traceback"] == text


def test_nack_retry_delay_ms_replaces_the_backoff(client, fake):
    task = leased(client)
    resp = client.simulate_post(f"/tasks/{task['id']}/nack", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"], "retry_delay_ms": 4_321})
    assert resp.status_code == 200 and fake.commands[-1]["retry_delay_ms"] == 4_321
    assert resp.json["status"] == "pending"


def test_nack_dead_letter_flag(client, fake):
    task = leased(client)
    resp = client.simulate_post(f"/tasks/{task['id']}/nack", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"], "dead_letter": True})
    assert resp.json["status"] == "dead"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("ack", {}, "worker_id"),
        ("ack", {"worker_id": "w", "lease_token": 5}, "lease_token"),
        ("ack", {"worker_id": "w", "reason": "x"}, "reason"),
        ("nack", {"worker_id": "w", "reason": 5}, "reason"),
        ("nack", {"worker_id": "w", "reason": "x" * 5000}, "reason"),
        ("nack", {"worker_id": "w", "dead_letter": "yes"}, "dead_letter"),
        ("nack", {"worker_id": "w", "traceback": "t" * 2_049}, "traceback"),
        ("nack", {"worker_id": "w", "traceback": ["t"]}, "traceback"),
        ("nack", {"worker_id": "w", "retry_delay_ms": -1}, "retry_delay_ms"),
        ("nack", {"worker_id": "w", "retry_delay_ms": "1"}, "retry_delay_ms"),
        ("nack", {"worker_id": "w", "retry_delay_ms": 7 * 24 * 3_600_000 + 1}, "retry_delay_ms"),
        ("release", {"worker_id": "w", "result": 1}, "result"),
        ("extend", {"worker_id": "w", "lease_seconds": -3}, "lease_seconds"),
        ("cancel", {"worker_id": "w"}, "worker_id"),
    ],
)
def test_action_bad_fields(client, fake, path, body, field):
    resp = client.simulate_post(f"/tasks/abc/{path}", json=body)
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == field
    assert fake.commands == []


def test_extend_sends_lease_ms(client, fake):
    task = leased(client)
    resp = client.simulate_post(f"/tasks/{task['id']}/extend", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"], "lease_seconds": 60})
    assert resp.status_code == 200
    assert fake.commands[-1]["lease_ms"] == 60_000


def test_cancel_pending_then_conflict(client):
    task_id = enqueue(client, type="email").json["id"]
    resp = client.simulate_post(f"/tasks/{task_id}/cancel")
    assert resp.status_code == 200
    assert resp.json["status"] == "cancelled"
    again = client.simulate_post(f"/tasks/{task_id}/cancel", json={})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "invalid_state"


def test_get_task_and_404(client):
    task_id = enqueue(client, type="email").json["id"]
    resp = client.simulate_get(f"/tasks/{task_id}")
    assert resp.status_code == 200
    assert resp.json["id"] == task_id
    missing = client.simulate_get("/tasks/" + "0" * 32)
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    too_long = client.simulate_get("/tasks/" + "x" * 200)
    assert too_long.status_code == 404


def test_list_dead_tasks(client, fake):
    task = leased(client)
    client.simulate_post(f"/tasks/{task['id']}/nack", json={
        "worker_id": "worker-1", "lease_token": task["lease"]["token"], "dead_letter": True})
    resp = client.simulate_get("/tasks", params={"status": "dead", "limit": "10"})
    assert resp.status_code == 200
    assert [t["id"] for t in resp.json["tasks"]] == [task["id"]]
    assert resp.json["next_cursor"] is None
    assert fake.reads[-1] == {"op": "list", "status": "dead", "type": None, "limit": 10,
                              "cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "status"),
        ({"status": "zombie"}, "status"),
        ({"status": "dead", "limit": "0"}, "limit"),
        ({"status": "dead", "limit": "abc"}, "limit"),
        ({"status": "dead", "limit": "5000"}, "limit"),
        ({"status": "dead", "type": "a b"}, "type"),
        ({"status": "dead", "sort": "asc"}, "sort"),
    ],
)
def test_list_bad_query(client, fake, params, field):
    resp = client.simulate_get("/tasks", params=params)
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == field
    assert fake.reads == []


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NoLeader("n2", "127.0.0.1:8082"), "no_leader"),
        (RequestTimeout("slow", "n2", "127.0.0.1:8082"), "timeout"),
        (RaftUnavailable("down"), "unavailable"),
        (RaftClientError("link broken"), "unavailable"),
    ],
)
def test_raft_failures_are_503_with_retry_after(client, fake, exc, code):
    fake.fail_with = exc
    resp = enqueue(client, type="email")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.json["error"]["code"] == code
    if code != "unavailable":
        assert resp.json["error"]["leader_id"] == "n2"
        assert resp.json["error"]["leader_http"] == "127.0.0.1:8082"


def test_a_request_the_raft_process_calls_malformed_is_400(client, fake):
    fake.fail_with = BadRequest("tasks[0].type: too long")
    resp = enqueue(client, type="email")
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_field"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/tasks", '{"type":"x","payload":"\\ud800"}', "payload"),
        ("/tasks", '{"type":"x","payload":{"a":["ok","\\udfff"]}}', "payload.a[1]"),
        ("/tasks", '{"type":"x","payload":{"\\ud800":1}}', "payload"),
        ("/tasks", '{"type":"x","idempotency_key":"k\\ud800"}', "idempotency_key"),
        ("/tasks/batch", '{"tasks":[{"type":"x"},{"type":"x","payload":"\\ud800"}]}',
         "tasks[1].payload"),
        ("/tasks/lease", '{"worker_id":"w\\udc00"}', "worker_id"),
    ],
)
def test_a_lone_surrogate_is_400_naming_the_field(client, fake, path, body, field):
    # JSON accepts "\ud800" but msgpack cannot encode it: it was a 500, and inside a coalesced
    # command it failed every other client's enqueue with it.
    resp = client.simulate_post(path, body=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json["error"]["field"] == field
    assert fake.commands == []


def test_a_surrogate_pair_is_valid_text(client, fake):
    resp = client.simulate_post("/tasks", body='{"type":"x","payload":"\\ud83d\\ude00"}',
                                headers={"Content-Type": "application/json"})
    assert resp.status_code == 201
    assert resp.json["payload"] == "\U0001f600"


def test_get_with_wait_asks_for_a_waiting_read_cut_to_max_wait(client, fake, config):
    task_id = enqueue(client, type="email").json["id"]
    assert client.simulate_get(f"/tasks/{task_id}", params={"wait": "1.5"}).status_code == 200
    assert fake.reads[-1] == {"op": "get", "id": task_id, "wait_ms": 1_500}
    client.simulate_get(f"/tasks/{task_id}", params={"wait": "0.0001"})
    assert fake.reads[-1]["wait_ms"] == 1  # rounded up: a wait asked for is never none
    client.simulate_get(f"/tasks/{task_id}", params={"wait": "3600"})
    assert fake.reads[-1]["wait_ms"] == config.max_wait_ms
    for params in ({}, {"wait": "0"}, {"wait": ""}):
        resp = client.simulate_get(f"/tasks/{task_id}", params=params)
        assert resp.status_code == 200 and fake.reads[-1] == {"op": "get", "id": task_id}
        assert resp.headers.get("Dqueue-Wait") is None


@pytest.mark.parametrize("wait", ["-1", "soon", "nan", "inf", "1e999"])
def test_get_with_a_bad_wait_is_400_naming_wait(client, fake, wait):
    task_id = enqueue(client, type="email").json["id"]
    resp = client.simulate_get(f"/tasks/{task_id}", params={"wait": wait})
    assert resp.status_code == 400 and resp.json["error"]["field"] == "wait"


def test_a_refused_waiting_get_answers_at_once_and_says_so_only_when_unfinished(
        client, fake, monkeypatch):
    monkeypatch.setattr(LongPollGate, "try_enter", lambda self: False)  # every place taken
    task_id = enqueue(client, type="email").json["id"]
    resp = client.simulate_get(f"/tasks/{task_id}", params={"wait": "5"})
    assert resp.status_code == 200 and resp.json["status"] == "pending"
    assert resp.headers["Dqueue-Wait"].startswith("refused")
    assert fake.reads[-1] == {"op": "get", "id": task_id}  # read at once, no wait
    client.simulate_post(f"/tasks/{task_id}/cancel")
    resp = client.simulate_get(f"/tasks/{task_id}", params={"wait": "5"})
    assert resp.json["status"] == "cancelled" and "Dqueue-Wait" not in resp.headers
    resp = client.simulate_get("/tasks/missing", params={"wait": "5"})
    assert resp.status_code == 404
