"""Health, stats, cluster and metrics resources."""

from __future__ import annotations

from dqueue.protocol.ipc_client import BadRequest, NoLeader


def test_health_adds_status_to_the_node_view(client):
    resp = client.simulate_get("/health")
    assert resp.status_code == 200
    assert resp.json["status"] == "ok"
    assert resp.json["role"] == "leader"
    assert resp.json["commit_index"] == 7


def test_health_is_503_when_raft_is_down(client, fake):
    fake.fail_with = NoLeader(None, None)
    resp = client.simulate_get("/health")
    assert resp.status_code == 503
    assert resp.json["error"]["leader_id"] is None


def test_stats_shape(client):
    client.simulate_post("/tasks", json={"type": "a"})
    client.simulate_post("/tasks", json={"type": "a"})
    resp = client.simulate_get("/stats")
    assert resp.status_code == 200
    assert resp.json["tasks"] == {"pending": 2, "leased": 0, "completed": 0, "dead": 0,
                                  "cancelled": 0}
    assert resp.json["by_type"]["a"]["pending"] == 2
    assert resp.json["raft"]["term"] == 3


def test_cluster_fills_http_addresses_from_config(client):
    resp = client.simulate_get("/cluster")
    assert resp.status_code == 200
    members = {m["id"]: m for m in resp.json["members"]}
    assert members["n1"]["http_addr"] == "127.0.0.1:8081"
    assert members["n2"]["http_addr"] is None
    assert resp.json["commit_index"] == 7
    assert resp.json["applied_index"] == 7


def test_metrics_text_moves_with_traffic(client):
    from prometheus_client.parser import text_string_to_metric_families

    def sample(text, name, **labels):
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None

    before = client.simulate_get("/metrics").text
    assert sample(before, "dqueue_queue_tasks", queue="default", status="pending") == 0
    client.simulate_post("/tasks", json={"type": "email"})
    client.simulate_post("/tasks", json={"type": "email"})
    after = client.simulate_get("/metrics").text
    assert sample(after, "dqueue_tasks_enqueued_total", type="email") is None  # one family
    assert sample(after, "dqueue_raft_up") == 1
    assert sample(after, "dqueue_raft_term") == 3
    assert sample(after, "dqueue_raft_role", role="leader") == 1
    assert sample(after, "dqueue_raft_commit_index") == 7
    assert sample(after, "dqueue_raft_role", role="follower") == 0
    assert sample(after, "dqueue_queue_tasks", queue="default", status="pending") == 2
    assert sample(after, "dqueue_http_request_duration_seconds_count",
                  route="/tasks", method="POST", code="201") == 2


def test_ready_is_200_with_a_leader_and_no_lag(client):
    resp = client.simulate_get("/ready")
    assert resp.status_code == 200
    assert resp.json["ready"] is True
    assert resp.json["lag"] == 0


def test_ready_is_503_without_a_leader(client, fake):
    fake.health_overrides = {"leader_id": None, "status": "no_leader"}
    resp = client.simulate_get("/ready")
    assert resp.status_code == 503
    assert resp.json["reason"] == "no_leader"
    assert resp.headers["Retry-After"] == "1"
    health = client.simulate_get("/health")
    assert health.status_code == 200
    assert health.json["status"] == "no_leader"


def test_ready_is_503_while_the_state_machine_lags(client, fake):
    fake.health_overrides = {"commit_index": 5_000, "applied_index": 3_999}
    resp = client.simulate_get("/ready")
    assert resp.status_code == 503
    assert resp.json["reason"] == "lagging"
    assert resp.json["lag"] == 1_001
    fake.health_overrides = {"commit_index": 5_000, "applied_index": 4_000}
    assert client.simulate_get("/ready").status_code == 200


def test_ready_is_503_while_stopping(client, fake):
    fake.health_overrides = {"status": "stopping"}
    assert client.simulate_get("/ready").json["reason"] == "stopping"


def test_a_refusal_of_the_raft_process_names_its_field(client, fake):
    # GET /tasks?cursor=zzz used to blame the field "body".
    fake.fail_with = BadRequest("cursor: is not a cursor this API returned")
    resp = client.simulate_get("/tasks", params={"status": "pending", "cursor": "zzz"})
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "cursor"
    fake.fail_with = BadRequest("something without a field")
    assert client.simulate_get("/stats").json["error"]["field"] == "body"
