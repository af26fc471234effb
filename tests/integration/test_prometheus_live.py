"""A real node's ``/metrics`` against Prometheus's own linter and against conf/: promtool
check metrics finds no problem, every family has a HELP text of its own, and every metric the
dashboard and the alert rules read is a family the node exports; on three members only the
leader reports the queue, so sums over the nodes count each task once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dqueue.api.metrics import UNDESCRIBED
from dqueue.testing.cluster import NodeCluster
from dqueue.testing.http import Http
from tests.unit.deploy.prom import (
    PROMETHEUS_SERIES,
    alert_expressions,
    dashboard_expressions,
    family_of,
    metric_names,
    promtool,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def scraped(tmp_path) -> Iterator[str]:
    """The /metrics text of a single-node cluster after an enqueue, an ack and a
    dead-lettering, so that the labelled families have samples."""
    nodes = NodeCluster(tmp_path, 1, start=True)
    try:
        nodes.leader()
        http = Http(nodes.http_addr["n1"])
        try:
            for _ in range(2):
                status, _, _ = http.call("POST", "/tasks", {"type": "scraped"})
                assert status == 201
            for action, extra in (("ack", {}), ("nack", {"dead_letter": True})):
                status, _, task = http.call("POST", "/tasks/lease", {
                    "worker_id": "w", "types": ["scraped"], "wait_seconds": 0})
                assert status == 200, task
                status, _, body = http.call("POST", f"/tasks/{task['id']}/{action}", {
                    "worker_id": "w", "lease_token": task["lease"]["token"], **extra})
                assert status == 200, body
            status, _, text = http.call("GET", "/metrics")
            assert status == 200
        finally:
            http.close()
        yield text
    finally:
        nodes.close()


def test_promtool_finds_no_problem_in_a_live_scrape(scraped: str) -> None:
    done = promtool("check", "metrics", stdin=scraped)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr)


def test_every_family_has_a_help_text_of_its_own(scraped: str) -> None:
    families = list(text_string_to_metric_families(scraped))
    assert len(families) > 40
    for family in families:
        assert family.documentation, family.name
        assert UNDESCRIBED not in family.documentation, family.name
        assert family.documentation != family.name, family.name
    names = {f.name for f in families}
    # Base units and one family per fact (the names this issue replaced).
    assert not any(name.endswith("_ms") or "_ms_" in name for name in names)
    assert not names & {"dqueue_tasks_acked", "dqueue_queue_depth", "dqueue_raft_is_leader"}
    assert {"dqueue_raft_persist_seconds", "dqueue_queue_tasks"} <= names


def test_queue_figures_carry_their_labels(scraped: str) -> None:
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(scraped) for s in f.samples}
    key = (("queue", "default"), ("type", "scraped"))
    assert samples[("dqueue_queue_tasks_enqueued_total", key)] == 2
    assert samples[("dqueue_queue_tasks_dead_lettered_total", key)] == 1
    assert samples[("dqueue_queue_tasks", (("queue", "default"), ("status", "dead")))] == 1


def test_dashboard_and_rules_read_only_exported_families(scraped: str) -> None:
    families = {f.name for f in text_string_to_metric_families(scraped)}
    expressions = [*alert_expressions().items(), *dashboard_expressions()]
    read = set()
    for where, expr in expressions:
        for name in metric_names(expr) - PROMETHEUS_SERIES:
            assert family_of(name, families) is not None, (where, name)
            read.add(name)
    assert len(read) >= 15


def test_on_three_members_only_the_leader_reports_the_queue(tmp_path) -> None:
    nodes = NodeCluster(tmp_path, 3, start=True)
    try:
        leader = nodes.leader()
        http = {n: Http(nodes.http_addr[n]) for n in nodes.running()}
        try:
            status, _, _ = http[leader].call("POST", "/tasks", {"type": "counted"})
            assert status == 201
            texts = {}
            for node_id, client in http.items():
                status, _, texts[node_id] = client.call("GET", "/metrics")
                assert status == 200
        finally:
            for client in http.values():
                client.close()
    finally:
        nodes.close()
    for node_id, text in texts.items():
        done = promtool("check", "metrics", stdin=text)
        assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), node_id
    samples = {n: {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(t) for s in f.samples}
               for n, t in texts.items()}
    pending = (("queue", "default"), ("status", "pending"))
    enqueued = (("queue", "default"), ("type", "counted"))
    reporting = {n for n, got in samples.items()
                 if any(name.startswith("dqueue_queue_tasks") for name, _ in got)}
    assert reporting == {leader}
    # Summed over every node, as a dashboard does: each task once.
    assert sum(got.get(("dqueue_queue_tasks", pending), 0) for got in samples.values()) == 1
    assert sum(got.get(("dqueue_queue_tasks_enqueued_total", enqueued), 0)
               for got in samples.values()) == 1
    assert sum(got[("dqueue_raft_role", (("role", "leader"),))]
               for got in samples.values()) == 1
