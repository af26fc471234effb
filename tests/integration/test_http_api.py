"""The HTTP API against real nodes started like ``bin/dqueue``: one node, and a 3-node cluster.

Every example of the seed README's API section, on the single node and on each member of the
cluster; bad input of every field answered 4xx with nothing changed; a follower forwarding
writes; long-poll leases; /metrics parsed by prometheus-client and moving with traffic; 503
without a leader; the supervisor restarting a killed API process, stopping cleanly on SIGTERM,
and exiting non-zero when the Raft process dies.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dqueue.testing.cluster import NodeCluster, is_alive, wait_http
from dqueue.testing.http import Http

pytestmark = pytest.mark.integration


def running(root: Path, size: int) -> Iterator[NodeCluster]:
    """Members started and agreed on a leader; stopped (by PID) afterwards."""
    nodes = NodeCluster(root, size, log_format="json", start=True)
    try:
        nodes.leader()
        yield nodes
    finally:
        nodes.close()


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    yield from running(tmp_path_factory.mktemp("http-single"), 1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    yield from running(tmp_path_factory.mktemp("http-cluster"), 3)


def seed_examples(addr: str, first: bool) -> None:
    """The seed README's API section, as written (status codes and fields)."""
    http = Http(addr)
    try:
        status, _, task = http.call("POST", "/tasks", {
            "type": "email", "payload": {"to": "user@example.com", "subject": "Hello"},
            "priority": 10, "max_retries": 3, "idempotency_key": "abc",
        })
        # The key "abc" is replicated: on a cluster only the first node creates the task.
        assert status == (201 if first else 200), task
        assert task["duplicate"] is (not first)
        assert task["type"] == "email" and task["priority"] == 10
        status, _, curl_task = http.call(
            "POST", "/tasks", {"type": "email", "payload": {"to": "user@example.com"}})
        assert status == 201
        assert curl_task["status"] == "pending"
        # One more visible task, so that both the ack and the nack below find one even when
        # the key "abc" named an existing task.
        status, _, _ = http.call("POST", "/tasks", {"type": "email", "payload": {"n": 2}})
        assert status == 201

        for verb, body in (("ack", {"worker_id": "worker-1"}),
                           ("nack", {"worker_id": "worker-1",
                                     "reason": "database connection failed"})):
            status, _, leased = http.call("POST", "/tasks/lease", {"worker_id": "worker-1"})
            assert status == 200, leased
            assert leased["status"] == "leased"
            assert leased["lease"]["worker_id"] == "worker-1"
            # The seed's bodies, with the lease token that is now required (docs/security.md).
            body = {**body, "lease_token": leased["lease"]["token"]}
            status, _, done = http.call("POST", f"/tasks/{leased['id']}/{verb}", body)
            assert status == 200, done
            if verb == "ack":
                assert done["status"] == "completed"
            else:
                assert done["status"] in ("pending", "dead")
                assert done["last_error"] == "database connection failed"
            status, _, got = http.call("GET", f"/tasks/{leased['id']}")
            assert status == 200
            assert got["status"] == done["status"]

        status, _, health = http.call("GET", "/health")
        assert status == 200 and health["status"] == "ok" and health["leader_id"]
        status, _, stats = http.call("GET", "/stats")
        assert status == 200
        assert set(stats["tasks"]) >= {"pending", "leased", "completed", "dead"}
    finally:
        http.close()


def test_seed_examples_on_a_single_node(single: NodeCluster) -> None:
    seed_examples(single.http_addr["n1"], first=True)


def test_seed_examples_on_each_cluster_member(cluster: NodeCluster) -> None:
    for i, node_id in enumerate(cluster.ids):
        seed_examples(cluster.http_addr[node_id], first=i == 0)


def test_follower_forwards_writes(cluster: NodeCluster) -> None:
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    via_follower = Http(cluster.http_addr[follower])
    via_leader = Http(cluster.http_addr[leader])
    try:
        status, _, task = via_follower.call("POST", "/tasks", {"type": "fwd", "payload": 1})
        assert status == 201
        status, _, got = via_leader.call("GET", f"/tasks/{task['id']}")
        assert status == 200 and got["payload"] == 1
        status, _, page = via_follower.call("POST", "/tasks/batch", {"tasks": [
            {"type": "fwd-batch", "payload": i} for i in range(50)]})
        assert status == 201 and len(page["tasks"]) == 50
        status, _, stats = via_leader.call("GET", "/stats")
        assert stats["by_type"]["fwd-batch"]["pending"] == 50
        status, _, cluster_view = via_follower.call("GET", "/cluster")
        assert status == 200 and cluster_view["leader_id"] == leader
        assert {m["id"] for m in cluster_view["members"]} == set(cluster.ids)
    finally:
        via_follower.close()
        via_leader.close()


BIG = 2 * 1024 * 1024
BAD_REQUESTS: list[tuple[str, str, Any, dict[str, str], int, str | None]] = [
    # method, path, body (dict, or bytes sent raw), headers, status, field named
    ("POST", "/tasks", {}, {}, 400, "type"),
    ("POST", "/tasks", {"type": 1}, {}, 400, "type"),
    ("POST", "/tasks", {"type": "a", "priority": "high"}, {}, 400, "priority"),
    ("POST", "/tasks", {"type": "a", "priority": 2 ** 40}, {}, 400, "priority"),
    ("POST", "/tasks", {"type": "a", "max_retries": -3}, {}, 400, "max_retries"),
    ("POST", "/tasks", {"type": "a", "idempotency_key": ["x"]}, {}, 400, "idempotency_key"),
    ("POST", "/tasks", {"type": "a", "delay_seconds": -1}, {}, 400, "delay_seconds"),
    ("POST", "/tasks", {"type": "a", "payload": 2 ** 70}, {}, 400, "payload"),
    ("POST", "/tasks", {"type": "a", "sneaky": True}, {}, 400, "sneaky"),
    ("POST", "/tasks", b'{"type": "a"', {}, 400, "body"),
    ("POST", "/tasks", b'["a"]', {}, 400, "body"),
    ("POST", "/tasks", b'{"type": "a"}', {"Content-Type": "text/plain"}, 415, "Content-Type"),
    ("POST", "/tasks", b'{"type": "a", "payload": "' + b"x" * BIG + b'"}', {}, 413, "body"),
    ("POST", "/tasks/batch", {"tasks": []}, {}, 400, "tasks"),
    ("POST", "/tasks/batch", {"tasks": [{"type": "a"}, {"type": ""}]}, {}, 400, "tasks[1].type"),
    ("POST", "/tasks/lease", {}, {}, 400, "worker_id"),
    ("POST", "/tasks/lease", {"worker_id": "w", "types": "a"}, {}, 400, "types"),
    ("POST", "/tasks/lease", {"worker_id": "w", "max_tasks": 0}, {}, 400, "max_tasks"),
    ("POST", "/tasks/lease", {"worker_id": "w", "wait_seconds": 60}, {}, 400, "wait_seconds"),
    ("POST", "/tasks/lease", {"worker_id": "w", "lease_seconds": -5}, {}, 400, "lease_seconds"),
    ("POST", "/tasks/x/ack", {"worker_id": 5}, {}, 400, "worker_id"),
    ("POST", "/tasks/x/nack", {"worker_id": "w", "dead_letter": 1}, {}, 400, "dead_letter"),
    ("POST", "/tasks/x/extend", {"worker_id": "w", "lease_seconds": "10"}, {}, 400,
     "lease_seconds"),
    ("POST", "/tasks/x/cancel", {"why": "no"}, {}, 400, "why"),
    ("POST", "/dlq/redrive", {"task_id": "a", "type": "b"}, {}, 400, "task_id"),
    ("GET", "/tasks?status=bogus", None, {}, 400, "status"),
    ("GET", "/tasks?status=dead&limit=-1", None, {}, 400, "limit"),
    ("DELETE", "/dlq?type=a%20b", None, {}, 400, "type"),
    ("GET", "/tasks/" + "0" * 32, None, {}, 404, "id"),
    ("POST", "/tasks/" + "0" * 32 + "/ack", {"worker_id": "w", "lease_token": "1.0"}, {}, 404,
     None),
    ("POST", "/tasks/x/ack", {"worker_id": "w"}, {}, 409, "lease_token"),
]


def test_bad_input_is_4xx_and_changes_nothing(single: NodeCluster) -> None:
    http = Http(single.http_addr["n1"])
    try:
        _, _, before = http.call("GET", "/stats")
        for method, path, body, headers, want, field in BAD_REQUESTS:
            raw = body if isinstance(body, bytes) else None
            status, _, answer = http.call(method, path, None if raw else body, raw, headers)
            assert status == want, (method, path, answer)
            assert isinstance(answer, dict), answer
            if field is not None:
                assert answer["error"]["field"] == field, answer
        _, _, after = http.call("GET", "/stats")
        assert after["tasks"] == before["tasks"]
        assert after["by_type"] == before["by_type"]
    finally:
        http.close()


def test_long_poll_lease_answers_when_a_task_arrives(single: NodeCluster) -> None:
    addr = single.http_addr["n1"]
    result: list[tuple[int, Any, float]] = []

    def lease() -> None:
        http = Http(addr)
        started = time.monotonic()
        status, _, body = http.call("POST", "/tasks/lease", {
            "worker_id": "poller", "types": ["late"], "wait_seconds": 15})
        result.append((status, body, time.monotonic() - started))
        http.close()

    poller = threading.Thread(target=lease)
    poller.start()
    http = Http(addr)
    try:
        wait_http(lambda: metric(http, "dqueue_raft_requests_parked") >= 1, "a parked lease")
        status, _, task = http.call("POST", "/tasks", {"type": "late"})
        assert status == 201
        poller.join(20)
        [(status, body, waited_s)] = result
        assert status == 200 and body["id"] == task["id"]
        assert waited_s < 15
        status, _, _ = http.call("POST", "/tasks/lease", {"worker_id": "p", "types": ["none"],
                                                          "wait_seconds": 0.3})
        assert status == 204
    finally:
        http.close()


def metric(http: Http, name: str, **labels: str) -> float:
    """One sample of GET /metrics (0 when absent), parsed by prometheus-client."""
    status, _, text = http.call("GET", "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_parse_and_move(single: NodeCluster) -> None:
    http = Http(single.http_addr["n1"])
    try:
        applied = metric(http, "dqueue_queue_tasks_enqueued_total", type="metered")
        pending = metric(http, "dqueue_queue_tasks", queue="default", status="pending")
        commit = metric(http, "dqueue_raft_commit_index")
        status, _, _ = http.call("POST", "/tasks/batch", {"tasks": [{"type": "metered"}] * 7})
        assert status == 201
        assert metric(http, "dqueue_queue_tasks_enqueued_total", type="metered") == applied + 7
        assert metric(http, "dqueue_queue_tasks", queue="default", status="pending") == (
            pending + 7)
        assert metric(http, "dqueue_raft_commit_index") > commit
        assert metric(http, "dqueue_raft_up") == 1
        assert metric(http, "dqueue_raft_role", role="leader") == 1
        assert metric(http, "dqueue_http_request_duration_seconds_count",
                      route="/tasks/batch", method="POST", code="201") >= 1
    finally:
        http.close()


def test_supervisor_restarts_a_killed_api_process(single: NodeCluster) -> None:
    old = single.api_pid("n1")
    assert old is not None
    os.kill(old, signal.SIGKILL)
    new = wait_http(lambda: (p := single.api_pid("n1")) != old and p, "a new API process")
    wait_http(lambda: single.health("n1"), "the restarted API answering")
    assert new != old


def test_no_leader_is_503_with_retry_after(tmp_path) -> None:
    nodes = NodeCluster(tmp_path, 3, api={"request_timeout": "1s"}, log_format="json",
                        start=["n1"])
    try:
        wait_http(lambda: nodes.health("n1"), "the lone member answering")
        http = Http(nodes.http_addr["n1"])
        status, headers, body = http.call("POST", "/tasks", {"type": "a"})
        http.close()
        assert status == 503
        assert headers["retry-after"] == "1"
        assert body["error"]["code"] in ("no_leader", "timeout")
        assert "leader_id" in body["error"]
    finally:
        nodes.close()


def test_sigterm_stops_the_node_cleanly(tmp_path) -> None:
    nodes = NodeCluster(tmp_path, 1, log_format="json", start=True)
    try:
        nodes.leader()
        children = list(nodes.children["n1"])
        assert len(children) == 2
        assert nodes.stop("n1") == 0
        assert not any(is_alive(pid) for pid in children)
    finally:
        nodes.close()


def test_death_of_the_raft_process_stops_the_node_with_an_error(tmp_path) -> None:
    nodes = NodeCluster(tmp_path, 1, log_format="json", start=True)
    try:
        nodes.leader()
        api = nodes.api_pid("n1")
        raft = next(pid for pid in nodes.children["n1"] if pid != api)
        os.kill(raft, signal.SIGKILL)
        code = nodes.procs["n1"].wait(30)
        assert code != 0
        assert api is not None
        wait_http(lambda: not is_alive(api), "the API process to be stopped")
    finally:
        nodes.close()
