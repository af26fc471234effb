"""The conf/ files' PromQL, and promtool: shared by the rule tests and the live-node test."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "conf" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "conf" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "conf" / "grafana" / "dqueue.json"
# Series Prometheus makes itself for every target (not exported by a node).
PROMETHEUS_SERIES = frozenset({"up"})
# Grafana's variables, replaced by something PromQL parses.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$job": "dqueue"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_METRIC = re.compile(r"(?<![A-Za-z0-9_:])(?:dqueue_[A-Za-z0-9_:]*|up)(?![A-Za-z0-9_:(])")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Grafana's label_values(<selector>, <label>) of a variable: the selector is the PromQL.
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$")


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool; fails the test (never skips it) when promtool is not installed."""
    path = shutil.which("promtool")
    assert path is not None, "promtool not found: apt-get install prometheus (.ci/run does)"
    return subprocess.run([path, *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def alert_expressions() -> dict[str, str]:
    """Alert name -> expression of every rule in alerts.yml."""
    doc = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule["expr"] for group in doc["groups"] for rule in group["rules"]}


def _dashboard_queries(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            # A datasource variable's "query" is a plugin name, not PromQL (no parenthesis).
            promql = key in ("expr", "definition") or (key == "query" and "(" in str(value))
            if promql and isinstance(value, str):
                yield where, value
            else:
                title = node.get("title") if isinstance(node.get("title"), str) else where
                yield from _dashboard_queries(value, title)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_queries(item, where)


def dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query in the Grafana dashboard, variables replaced."""
    out = []
    for where, expr in _dashboard_queries(json.loads(DASHBOARD.read_text()), "dashboard"):
        for name, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(name, value)
        expr = _LABEL_VALUES.sub(r"\1", expr)
        if (where, expr) not in out:
            out.append((where, expr))
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers ``dqueue_*`` or ``up`` outside
    strings that are not function calls."""
    return set(_METRIC.findall(_STRINGS.sub('""', expr)))


def family_of(name: str, families: set[str]) -> str | None:
    """The exported family a series name belongs to (``x_bucket`` -> ``x``), or None."""
    if name in families:
        return name
    for suffix in (*_HISTOGRAM_SUFFIXES, "_total"):
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            return name[: -len(suffix)]
    return None
