"""The comparison's table: per figure, each system's median and range over the rounds, and
dqueue's ratio to NATS JetStream (computed within each round, then its median and range)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from workloads import Plan

NAMES = {"nats": "NATS JetStream R3", "rabbitmq": "RabbitMQ quorum",
         "dqueue-http": "dqueue HTTP", "dqueue-sdk": "dqueue SDK"}

# (label, workload, field, format, has a ratio)
ROWS: list[tuple[str, str, str, str, bool]] = [
    ("W1 tasks/s (4 producers, 1 per confirm)", "W1", "rate", "{:,.0f}", True),
    ("W1 p50 ms", "W1", "p50_ms", "{:.2f}", False),
    ("W1 p99 ms", "W1", "p99_ms", "{:.1f}", False),
    ("W2 tasks/s (1 producer, batches of 100)", "W2", "rate", "{:,.0f}", True),
    ("W3 tasks/s (4 consumers, lease 1 + ack)", "W3", "rate", "{:,.0f}", True),
    ("W4 longest gap s (kill -9 of the leader)", "W4", "gap_s", "{:.2f}", False),
    ("W4 acked writes lost", "W4", "lost", "{:.0f}", False),
]


def _value(round_: dict[str, Any], system: str, workload: str, field: str) -> float | None:
    figures = round_.get(system, {}).get(workload, {})
    value = figures.get(field) if isinstance(figures, dict) else None
    if isinstance(value, int | float) and not math.isnan(value):
        return float(value)
    return None


def _cell(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    median = fmt.format(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _errors(rounds: list[dict[str, Any]], systems: list[str]) -> list[str]:
    notes = []
    for index, round_ in enumerate(rounds):
        for system in systems:
            figures = round_.get(system, {})
            if "error" in figures:
                notes.append(f"round {index + 1}, {system}: {figures['error']}")
            for workload, result in figures.items():
                if isinstance(result, dict) and "error" in result:
                    notes.append(f"round {index + 1}, {system} {workload}: {result['error']}")
                if isinstance(result, dict) and "read_back_error" in result:
                    notes.append(f"round {index + 1}, {system} {workload} read-back: "
                                 f"{result['read_back_error']}")
                elif isinstance(result, dict) and result.get("errors"):
                    notes.append(f"round {index + 1}, {system} {workload}: "
                                 f"{result['errors']} failed operations (retried or skipped)")
    return notes


def render(rounds: list[dict[str, Any]], systems: list[str], plan: Plan,
           versions: dict[str, str]) -> str:
    """A Markdown table of every figure, then the failures worth reading."""
    columns: list[tuple[str, Callable[[dict[str, Any], str, str], float | None]]] = []
    for system in systems:
        columns.append((NAMES[system],
                        lambda r, w, f, s=system: _value(r, s, w, f)))
        if system.startswith("dqueue") and "nats" in systems:
            def ratio(r: dict[str, Any], w: str, f: str, s: str = system) -> float | None:
                mine, theirs = _value(r, s, w, f), _value(r, "nats", w, f)
                return mine / theirs if mine is not None and theirs else None

            columns.append((f"{NAMES[system]} / NATS", ratio))
    lines = [f"{len(rounds)} round(s); {plan.describe()}",
             f"nats-server {versions.get('nats')}, rabbitmq-server {versions.get('rabbitmq')}, "
             f"dqueue {versions.get('dqueue')}; cells: median (min-max) over the rounds",
             "",
             "| figure | " + " | ".join(name for name, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for label, workload, field, fmt, has_ratio in ROWS:
        cells = []
        for name, get in columns:
            if name.endswith("/ NATS") and not has_ratio:
                cells.append("")
                continue
            values = [v for r in rounds if (v := get(r, workload, field)) is not None]
            cells.append(_cell(values, "{:.2f}" if name.endswith("/ NATS") else fmt))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    acked = []
    for system in systems:
        counts = [v for r in rounds if (v := _value(r, system, "W4", "acked")) is not None]
        if counts:
            acked.append(f"{NAMES[system]} {sum(counts):,.0f}")
    if acked:
        lines += ["", "W4 acknowledged writes read back (all rounds): " + ", ".join(acked)]
    notes = _errors(rounds, systems)
    if notes:
        lines += ["", "Failures:"] + [f"- {note}" for note in notes]
    return "\n".join(lines)
