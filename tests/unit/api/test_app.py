"""App-wide behaviour: body handling, error shapes, routes against the OpenAPI document."""

from __future__ import annotations

import falcon.inspect
import falcon.testing
import pytest
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.api.openapi import openapi_document
from dqueue.config import NodeConfig


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"type": "a",', "application/json", 400, "invalid_json"),
        (b'{"type": "a", "payload": NaN}', "application/json", 400, "invalid_json"),
        (b'{"type": "a", "payload": 1e999}', "application/json", 400, "invalid_field"),
        (b'[{"type": "a"}]', "application/json", 400, "invalid_json"),
        (b"type=a", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_refused(client, fake, body, content_type,
                                                       status, code):
    resp = client.simulate_post("/tasks", body=body, headers={"Content-Type": content_type})
    assert resp.status_code == status
    assert resp.json["error"]["code"] == code
    assert resp.json["error"]["field"] in ("body", "Content-Type", "payload")
    assert fake.commands == []


def test_json_with_charset_is_accepted(client):
    resp = client.simulate_post("/tasks", body=b'{"type": "a"}',
                                headers={"Content-Type": "application/json; charset=utf-8"})
    assert resp.status_code == 201


def test_oversized_body_is_413(client, fake, config):
    big = b'{"type": "a", "payload": "' + b"x" * config.max_body_bytes + b'"}'
    resp = client.simulate_post("/tasks", body=big, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json["error"]["code"] == "body_too_large"
    assert fake.commands == []


def test_unknown_route_is_json_404(client):
    resp = client.simulate_get("/nowhere")
    assert resp.status_code == 404
    assert resp.json["error"]["code"] == "not_found"


def test_wrong_method_is_json_405(client):
    resp = client.simulate_delete("/tasks")
    assert resp.status_code == 405
    assert resp.json["error"]["code"] == "method_not_allowed"


def test_unexpected_exception_is_500_without_details(fake, config):
    def broken_factory():
        raise RuntimeError("secret detail")

    app = create_app(broken_factory, config, CollectorRegistry())
    resp = falcon.testing.TestClient(app).simulate_post("/tasks", json={"type": "a"})
    assert resp.status_code == 500
    assert resp.json["error"]["code"] == "internal"
    assert "secret" not in resp.text


def test_one_client_per_thread(config):
    import threading

    made = []

    class Counting:
        def __init__(self):
            made.append(threading.get_ident())

        def read(self, query, timeout_ms=5000, stale=False):
            return {"node_id": "n1"}

        def command(self, cmd, timeout_ms=5000, wait_ms=0):
            raise AssertionError

        def close(self):
            pass

    client = falcon.testing.TestClient(create_app(Counting, config, CollectorRegistry()))
    client.simulate_get("/health")
    client.simulate_get("/health")
    thread = threading.Thread(target=lambda: client.simulate_get("/health"))
    thread.start()
    thread.join()
    assert len(made) == 2
    assert len(set(made)) == 2


def _routes(config: NodeConfig) -> set[tuple[str, str]]:
    app = create_app(lambda: None, config, CollectorRegistry())
    found = set()
    for route in falcon.inspect.inspect_routes(app):
        for method in route.methods:
            if not method.internal:
                found.add((route.path, method.method.lower()))
    return found


def test_every_route_is_in_openapi_and_nothing_else(config):
    document = openapi_document()
    documented = {
        (path, method) for path, item in document["paths"].items() for method in item
    }
    assert _routes(config) == documented


def test_openapi_is_served(client):
    resp = client.simulate_get("/openapi.json")
    assert resp.status_code == 200
    assert resp.json == openapi_document()
