"""conf/prometheus/alerts.yml and conf/grafana/dqueue.json: promtool accepts the rules,
the rules' unit tests pass, every dashboard query parses, and every query reads something.

That the metric names exist on a live node is tests/integration/test_prometheus_live.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.deploy.prom import (
    ALERTS,
    ALERTS_TEST,
    DASHBOARD,
    alert_expressions,
    dashboard_expressions,
    metric_names,
    promtool,
)


def test_promtool_checks_the_alert_rules() -> None:
    done = promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    done = promtool("test", "rules", str(ALERTS_TEST))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rules_cover_what_operators_asked_for() -> None:
    assert set(alert_expressions()) >= {
        "DqueueNodeDown", "DqueueNoLeader", "DqueueLeaderFlapping", "DqueueMemberLagging",
        "DqueueApplyLagging", "DqueueFsyncSlow", "DqueueDeadLettersRising",
        "DqueueQueueDepthGrowing"}


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_expressions()
    assert len(queries) >= 20
    # promtool parses PromQL in rule files: each query becomes a recording rule.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{n}", "expr": expr}
        for n, (_, expr) in enumerate(queries)]}]}
    path = tmp_path / "dashboard_rules.json"
    path.write_text(json.dumps(rules))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_query_reads_a_metric() -> None:
    for where, expr in [*alert_expressions().items(), *dashboard_expressions()]:
        assert metric_names(expr), (where, expr)


def test_the_dashboard_is_a_grafana_model_with_unique_panel_ids() -> None:
    model = json.loads(DASHBOARD.read_text())
    assert model["uid"] and model["title"] == "dqueue"
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in model["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and panel.get("description"), panel["title"]


def test_metric_names_skip_strings_functions_and_labels() -> None:
    expr = ('sum by (queue) (rate(dqueue_queue_tasks_acked_total{job="dqueue_x"}[5m])) '
            '/ up and on() dqueue_raft_up')
    assert metric_names(expr) == {"dqueue_queue_tasks_acked_total", "up", "dqueue_raft_up"}
