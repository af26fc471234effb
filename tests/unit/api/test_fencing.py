"""Holder operations carry the lease token, over HTTP and on the worker gateway
(``dqueue/api/fencing.py``; with worker keys, the gateway binds ``worker_id`` to the key)."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.api.fencing import is_lease_token
from dqueue.api.worker_requests import RequestError, ack_items_of, check_worker_id, command_of
from dqueue.queue.fields import PRESENTED_LEASE_TOKEN


def leased(client: Any) -> dict[str, Any]:
    client.simulate_post("/tasks", json={"type": "email"})
    return client.simulate_post("/tasks/lease", json={"worker_id": "worker-1"}).json


@pytest.mark.parametrize("action", ["ack", "nack", "extend"])
@pytest.mark.parametrize("token", [None, "absent"])
def test_http_without_a_token_is_a_lease_conflict_and_proposes_nothing(client, fake, action,
                                                                      token):
    task = leased(client)
    before = list(fake.commands)
    body: dict[str, Any] = {"worker_id": "worker-1"}
    if token is None:
        body["lease_token"] = None
    resp = client.simulate_post(f"/tasks/{task['id']}/{action}", json=body)
    assert resp.status_code == 409
    error = resp.json["error"]
    assert (error["code"], error["field"]) == ("lease_conflict", "lease_token")
    assert "lease_token is required" in error["message"]
    assert fake.commands == before
    assert fake.tasks[task["id"]]["status"] == "leased"


@pytest.mark.parametrize("action", ["ack", "nack", "extend"])
def test_http_with_a_wrong_token_is_a_lease_conflict(client, fake, action):
    task = leased(client)
    resp = client.simulate_post(f"/tasks/{task['id']}/{action}",
                                json={"worker_id": "worker-1", "lease_token": "1.0"})
    assert resp.status_code == 409
    assert resp.json["error"]["code"] == "lease_conflict"
    assert fake.tasks[task["id"]]["status"] == "leased"


def test_http_token_bounds(client, fake):
    task = leased(client)
    for bad in ("x" * (PRESENTED_LEASE_TOKEN.max_chars + 1), "", "a\nb", 5):
        resp = client.simulate_post(f"/tasks/{task['id']}/ack",
                                    json={"worker_id": "worker-1", "lease_token": bad})
        assert resp.status_code == 400, bad
        assert resp.json["error"]["field"] == "lease_token"
    assert is_lease_token("x" * PRESENTED_LEASE_TOKEN.max_chars)
    assert not is_lease_token("x" * (PRESENTED_LEASE_TOKEN.max_chars + 1))


@pytest.mark.parametrize("kind", [b"ack", b"nack", b"extend"])
def test_gateway_requests_need_the_token(kind):
    body: dict[str, Any] = {"rid": 1, "id": "t1", "worker_id": "w1"}
    with pytest.raises(RequestError) as caught:
        command_of(kind, body, 1_000)
    assert (caught.value.code, caught.value.field) == ("lease_conflict", "token")
    cmd, _ = command_of(kind, {**body, "token": "k"}, 1_000)
    assert cmd["token"] == "k"
    with pytest.raises(RequestError) as caught:
        command_of(kind, {**body, "token": "k" * (PRESENTED_LEASE_TOKEN.max_chars + 1)}, 1_000)
    assert (caught.value.code, caught.value.field) == ("invalid_field", "token")


def test_gateway_names_a_bad_field_before_the_missing_token():
    with pytest.raises(RequestError) as caught:
        command_of(b"nack", {"id": "t1", "worker_id": "w1", "dead_letter": "yes"}, 1_000)
    assert caught.value.field == "dead_letter"


def test_every_ack_many_item_needs_its_token():
    good = {"id": "t1", "token": "k"}
    with pytest.raises(RequestError) as caught:
        ack_items_of({"worker_id": "w1", "items": [good, {"id": "t2"}]})
    assert (caught.value.code, caught.value.field) == ("lease_conflict", "items[1].token")
    with pytest.raises(RequestError) as caught:
        ack_items_of({"worker_id": "w1", "items": [good, {"id": "t2", "token": None}]})
    assert caught.value.field == "items[1].token"
    assert ack_items_of({"worker_id": "w1", "items": [good]}) == [
        {"id": "t1", "worker_id": "w1", "token": "k"}]


def test_with_worker_keys_a_worker_acts_only_as_its_key():
    check_worker_id("w1", "")  # no keys: any id
    check_worker_id("w1", "w1")
    with pytest.raises(RequestError) as caught:
        check_worker_id("w2", "w1")
    assert (caught.value.code, caught.value.field) == ("forbidden", "worker_id")
    assert "'w1'" in caught.value.message and "'w2'" in caught.value.message
    lease = {"worker_id": "w2", "max_tasks": 1}
    ack = {"id": "t1", "worker_id": "w2", "token": "k"}
    for kind, body in ((b"lease", lease), (b"ack", ack), (b"nack", ack), (b"extend", ack)):
        with pytest.raises(RequestError) as caught:
            command_of(kind, body, 1_000, worker_name="w1")
        assert caught.value.code == "forbidden", kind
        assert command_of(kind, body, 1_000, worker_name="w2")[0]["worker_id"] == "w2"
    with pytest.raises(RequestError) as caught:
        ack_items_of({"worker_id": "w2", "items": [{"id": "t1", "token": "k"}]}, "w1")
    assert caught.value.code == "forbidden"
