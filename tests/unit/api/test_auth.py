"""Roles per route, bearer tokens, protected mode and hidden lease tokens, on the Falcon app."""

from __future__ import annotations

import dataclasses
import itertools

import falcon.inspect
import falcon.testing
import pytest
from prometheus_client import CollectorRegistry

from dqueue.api import auth
from dqueue.api.app import create_app
from dqueue.tokens import ROLES, TokenFile, TokenFileError, add_token, tokens_path
from tests.unit.api.conftest import FakeRaft

REMOTE = "10.250.0.7"  # any address that is not loopback (never contacted: an in-process test)
# A request each route accepts once past authentication (with the fake Raft behind it).
REQUESTS = {
    ("POST", "/tasks"): ("/tasks", {"type": "email"}),
    ("POST", "/tasks/batch"): ("/tasks/batch", {"tasks": [{"type": "email"}]}),
    ("POST", "/tasks/lease"): ("/tasks/lease", {"worker_id": "w"}),
    ("POST", "/tasks/{id}/ack"): ("/tasks/t1/ack", {"worker_id": "w"}),
    ("POST", "/tasks/{id}/nack"): ("/tasks/t1/nack", {"worker_id": "w"}),
    ("POST", "/tasks/{id}/release"): ("/tasks/t1/release", {"worker_id": "w"}),
    ("POST", "/tasks/{id}/extend"): ("/tasks/t1/extend", {"worker_id": "w"}),
    ("POST", "/tasks/{id}/cancel"): ("/tasks/t1/cancel", {}),
    ("GET", "/tasks"): ("/tasks?status=dead", None),
    ("GET", "/tasks/{id}"): ("/tasks/t1", None),
    ("GET", "/stats"): ("/stats", None),
    ("GET", "/stats/history"): ("/stats/history", None),
    ("GET", "/cluster"): ("/cluster", None),
    ("GET", "/health"): ("/health", None),
    ("GET", "/ready"): ("/ready", None),
    ("GET", "/metrics"): ("/metrics", None),
    ("GET", "/openapi.json"): ("/openapi.json", None),
    ("POST", "/dlq/redrive"): ("/dlq/redrive", {}),
    ("DELETE", "/dlq"): ("/dlq", None),
    ("GET", "/queues"): ("/queues", None),
    ("GET", "/queues/{name}"): ("/queues/default", None),
    ("PUT", "/queues/{name}"): ("/queues/q1", {}),
    ("PATCH", "/queues/{name}"): ("/queues/default", {"max_retries": 2}),
    ("DELETE", "/queues/{name}"): ("/queues/q1", None),
    ("POST", "/queues/{name}/purge"): ("/queues/default/purge", {}),
    ("POST", "/queues/{name}/move"): ("/queues/default/move", {}),
    ("GET", "/schedules"): ("/schedules", None),
    ("GET", "/schedules/{name}"): ("/schedules/s1", None),
    ("PUT", "/schedules/{name}"): ("/schedules/s1", {"every_seconds": 60,
                                                      "task": {"type": "t"}}),
    ("DELETE", "/schedules/{name}"): ("/schedules/s1", None),
    ("POST", "/schedules/{name}/pause"): ("/schedules/s1/pause", {}),
    ("POST", "/schedules/{name}/resume"): ("/schedules/s1/resume", {}),
    ("GET", "/rate-limits"): ("/rate-limits", None),
    ("GET", "/rate-limits/{type}"): ("/rate-limits/email", None),
    ("PUT", "/rate-limits/{type}"): ("/rate-limits/email", {"rate_limit": "10/s"}),
    ("DELETE", "/rate-limits/{type}"): ("/rate-limits/email", None),
    ("GET", "/workers"): ("/workers", None),
    ("POST", "/workers/heartbeat"): ("/workers/heartbeat", {
        "worker_id": "w", "host": "h", "pid": 1, "concurrency": 1,
        "started_at": "2025-11-27T19:47:00Z", "heartbeat_seconds": 5}),
    ("POST", "/cluster/members"): ("/cluster/members", {
        "id": "n4", "raft_addr": "127.0.0.1:9004", "http_addr": "127.0.0.1:8004"}),
    ("DELETE", "/cluster/members/{member}"): ("/cluster/members/n4", None),
    ("POST", "/cluster/members/{member}/promote"): ("/cluster/members/n4/promote", {}),
}


def build(config, secure_dir=None, **changes):
    config = dataclasses.replace(config, secure_dir=str(secure_dir or ""), **changes)
    ids = (f"t{i:031d}" for i in itertools.count(1))
    fake = FakeRaft()
    app = create_app(lambda: fake, config, CollectorRegistry(), new_id=lambda: next(ids))
    return falcon.testing.TestClient(app), fake


@pytest.fixture
def secure(tmp_path):
    """A secure folder with one token per role, plus one with every role."""
    folder = tmp_path / "sec"
    tokens = {role: add_token(str(folder), role, frozenset({role}))[0] for role in ROLES}
    tokens["all"] = add_token(str(folder), "all", frozenset(ROLES))[0]
    return folder, tokens


def call(client, key, token=None, remote_addr="127.0.0.1"):
    method, _ = key
    path, body = REQUESTS[key]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.simulate_request(method, path, json=body, headers=headers,
                                   remote_addr=remote_addr)


def test_every_responder_of_the_app_has_a_role_in_the_one_table(config):
    client, _ = build(config)
    served = {(method, route.path)
              for route in falcon.inspect.inspect_routes(client.app)
              for method_info in route.methods if not method_info.internal
              for method in [method_info.method]}
    assert served == set(auth.ROUTE_ROLES)  # nothing unlisted, nothing stale
    assert set(REQUESTS) == served
    assert set(auth.ROUTE_ROLES.values()) <= set(ROLES)
    assert set(auth.ROUTE_ROLES) >= auth.OPEN_HEALTH_ROUTES
    assert auth.role_for("POST", "/not/listed") == "admin"  # fail closed


@pytest.mark.parametrize("key", [k for k in REQUESTS if k not in auth.OPEN_HEALTH_ROUTES])
def test_each_role_is_allowed_exactly_where_the_table_says(config, secure, key):
    folder, tokens = secure
    client, _ = build(config, folder)
    needed = auth.ROUTE_ROLES[key]
    for role in ROLES:
        result = call(client, key, tokens[role], remote_addr=REMOTE)
        if role == needed:
            assert result.status_code not in (401, 403), (role, result.json)
        else:
            assert result.status_code == 403, (role, key)
            error = result.json["error"]
            assert error["code"] == "forbidden" and error["field"] == "Authorization"
            assert error["role"] == needed
            assert f"lacks the role {needed}" in error["message"]
    assert call(client, key, tokens["all"]).status_code not in (401, 403)


@pytest.mark.parametrize("key", [k for k in REQUESTS if k not in auth.OPEN_HEALTH_ROUTES])
def test_no_token_or_a_bad_one_is_401_with_a_challenge(config, secure, key):
    folder, tokens = secure
    client, _ = build(config, folder)
    for token, invalid in ((None, False), ("dq_not-a-token", True),
                           (tokens["read"] + "x", True), ("x" * 10_000, True)):
        result = call(client, key, token)  # loopback too: tokens bind everyone
        assert result.status_code == 401
        assert result.headers["WWW-Authenticate"].startswith("Bearer")
        assert ("invalid_token" in result.headers["WWW-Authenticate"]) is invalid
        error = result.json["error"]
        assert error["code"] == "unauthorized" and error["field"] == "Authorization"
    result = client.simulate_get("/stats", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert result.status_code == 401 and "Bearer" in result.json["error"]["message"]


def test_health_ready_metrics_are_open_by_default_and_can_be_closed(config, secure):
    folder, tokens = secure
    client, _ = build(config, folder)
    for key in auth.OPEN_HEALTH_ROUTES:
        assert call(client, key, remote_addr=REMOTE).status_code == 200, key
    closed, _ = build(config, folder, open_health=False)
    for key in auth.OPEN_HEALTH_ROUTES:
        assert call(closed, key, remote_addr=REMOTE).status_code == 401, key
        assert call(closed, key, tokens["read"], remote_addr=REMOTE).status_code == 200, key
        assert call(closed, key, tokens["produce"], remote_addr=REMOTE).status_code == 403


def test_protected_mode_serves_loopback_only_and_says_how_to_configure(config, tmp_path):
    for secure_dir in (None, tmp_path / "empty"):  # no folder, or a folder without tokens
        client, _ = build(config, secure_dir)
        for key in REQUESTS:
            assert call(client, key).status_code not in (401, 403), key
            result = call(client, key, remote_addr=REMOTE)
            assert result.status_code == 403, key
            error = result.json["error"]
            assert error["code"] == "protected_mode"
            assert "dqueue-cli tokens add" in error["message"]
            assert "--secure-dir" in error["message"] and "--insecure" in error["message"]
        for addr in ("::1", "::ffff:127.0.0.1", "127.8.9.10"):
            assert call(client, ("GET", "/stats"), remote_addr=addr).status_code == 200
        for addr in ("::ffff:10.0.0.1", "fe80::1", "not-an-ip"):
            assert call(client, ("GET", "/stats"), remote_addr=addr).status_code == 403
    assert not auth.is_loopback_addr("") and not auth.is_loopback_addr(None)


def test_insecure_serves_every_address_without_a_token(config):
    client, _ = build(config, insecure=True)
    for key in REQUESTS:
        assert call(client, key, remote_addr=REMOTE).status_code not in (401, 403), key


def leased_task(client, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client.simulate_post("/tasks", json={"type": "email", "idempotency_key": "k"},
                         headers=headers)
    return client.simulate_post("/tasks/lease", json={"worker_id": "w1"}, headers=headers)


def test_the_lease_token_and_holder_are_shown_only_with_consume(config, secure):
    folder, tokens = secure
    client, _ = build(config, folder)
    client.simulate_post("/tasks", json={"type": "email", "idempotency_key": "k"},
                         headers={"Authorization": f"Bearer {tokens['produce']}"})
    leased = client.simulate_post("/tasks/lease", json={"worker_id": "w1"},
                                  headers={"Authorization": f"Bearer {tokens['consume']}"})
    assert leased.json["lease"]["token"] and leased.json["lease"]["worker_id"] == "w1"
    task_id = leased.json["id"]

    def seen(token, path=f"/tasks/{task_id}"):
        return client.simulate_get(path, headers={"Authorization": f"Bearer {token}"}).json

    hidden = seen(tokens["read"])
    assert hidden["lease"] == {"expires_at": leased.json["lease"]["expires_at"]}
    assert "w1" not in str(hidden) and leased.json["lease"]["token"] not in str(hidden)
    listed = seen(tokens["read"], "/tasks?status=leased")["tasks"][0]
    assert listed["lease"] == hidden["lease"]
    # A duplicate enqueue answers the task, leased by now: no token for a producer either.
    dup = client.simulate_post("/tasks", json={"type": "email", "idempotency_key": "k"},
                               headers={"Authorization": f"Bearer {tokens['produce']}"}).json
    assert dup["duplicate"] and dup["lease"] == hidden["lease"]
    shown = seen(tokens["all"])
    assert shown["lease"]["token"] == leased.json["lease"]["token"]


def test_protected_mode_loopback_callers_see_leases(config):
    client, _ = build(config)
    leased = leased_task(client, None)
    got = client.simulate_get(f"/tasks/{leased.json['id']}").json
    assert got["lease"]["token"] == leased.json["lease"]["token"]


def test_a_token_added_while_running_works_without_a_restart(config, tmp_path):
    folder = tmp_path / "sec"
    folder.mkdir()
    now = [0.0]
    token_file = TokenFile(tokens_path(str(folder)), clock=lambda: now[0])
    app = create_app(lambda: FakeRaft(), dataclasses.replace(config, secure_dir=str(folder)),
                     CollectorRegistry(), token_file=token_file)
    client = falcon.testing.TestClient(app)
    assert client.simulate_get("/stats").status_code == 200  # protected: loopback served
    token, _ = add_token(str(folder), "late", frozenset({"read"}))
    now[0] += 1.5
    assert client.simulate_get("/stats").status_code == 401  # tokens now bind everyone
    ok = client.simulate_get("/stats", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


def test_a_malformed_tokens_file_refuses_to_build_the_app(config, tmp_path):
    (tmp_path / "tokens.json").write_text('{"version": 1, "tokens": [{"name": 5}]}')
    with pytest.raises(TokenFileError, match=r"tokens\.json: tokens\[0\]\.name"):
        build(config, tmp_path)


def test_bearer_header_parsing():
    assert auth.bearer_token("Bearer abc") == "abc"
    assert auth.bearer_token("bearer   abc ") == "abc"
    for bad in (None, "", "Bearer", "Bearer ", "Basic abc", "abc"):
        assert auth.bearer_token(bad) is None


def test_the_openapi_document_names_each_operations_role():
    from dqueue.api.openapi import openapi_document

    document = openapi_document()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            key = (method.upper(), path.split("?", 1)[0])
            assert operation["x-dqueue-role"] == auth.ROUTE_ROLES[key], key
            assert ({} in operation["security"]) is (key in auth.OPEN_HEALTH_ROUTES)
