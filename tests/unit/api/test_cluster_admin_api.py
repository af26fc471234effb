"""The membership routes (dqueue/api/cluster_admin.py): a bad field is a 400 naming it and
never reaches the Raft process; a good one becomes one member command."""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.config import NodeConfig
from dqueue.protocol.ipc_client import NoLeader

ADD = {"id": "n4", "raft_addr": "10.0.0.4:9090", "http_addr": "10.0.0.4:8080"}


@pytest.mark.parametrize(("body", "field", "code"), [
    ({**ADD, "id": "-bad"}, "id", "invalid_field"),
    ({k: v for k, v in ADD.items() if k != "raft_addr"}, "raft_addr", "missing_field"),
    ({**ADD, "raft_addr": "nowhere"}, "raft_addr", "invalid_field"),
    ({**ADD, "http_addr": "h:70000"}, "http_addr", "invalid_field"),
    ({**ADD, "public_key": "x" * 12}, "public_key", "invalid_field"),
    ({**ADD, "learner": False}, "learner", "invalid_field"),
    ({**ADD, "vote": True}, "vote", "unknown_field"),
])
def test_bad_fields_are_refused_naming_them(client: Any, fake: Any, body, field, code) -> None:
    before = len(fake.commands)
    answer = client.simulate_post("/cluster/members", json=body)
    assert answer.status_code == 400, answer.json
    assert (answer.json["error"]["field"], answer.json["error"]["code"]) == (field, code)
    assert len(fake.commands) == before


def test_a_follower_answers_503_with_the_leader_hint(client: Any, fake: Any) -> None:
    fake.fail_with = NoLeader("n2", "10.0.0.2:8080", "this node does not lead")
    answer = client.simulate_post("/cluster/members", json={**ADD, "learner": True})
    assert answer.status_code == 503
    assert answer.json["error"]["leader_http"] == "10.0.0.2:8080"
    for method, path in (("DELETE", "/cluster/members/n4"),
                         ("POST", "/cluster/members/n4/promote")):
        assert client.simulate_request(method, path).status_code == 503


def test_an_id_that_cannot_be_a_member_is_not_found(client: Any) -> None:
    answer = client.simulate_delete("/cluster/members/a%20b")
    assert answer.status_code == 404


def test_cluster_from_the_leader_only(client: Any) -> None:
    assert client.simulate_get("/cluster", params={"leader": "true"}).status_code == 200
    assert client.simulate_get("/cluster", params={"leader": "maybe"}).status_code == 400


def test_cluster_from_the_leader_on_a_follower_hints_the_leader(fake: Any) -> None:
    follower = NodeConfig(id="n2", peers_http={"n1": "127.0.0.1:8081"})  # the fake's n1 leads
    app = create_app(lambda: fake, follower, CollectorRegistry())
    answer = falcon.testing.TestClient(app).simulate_get("/cluster", params={"leader": "true"})
    assert answer.status_code == 503
    assert answer.json["error"]["leader_http"] == "127.0.0.1:8081"


def test_a_removed_member_is_not_ready(client: Any, fake: Any) -> None:
    fake.health_overrides = {"status": "removed"}
    answer = client.simulate_get("/ready")
    assert answer.status_code == 503 and answer.json["reason"] == "removed"
