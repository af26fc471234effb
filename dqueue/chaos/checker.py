"""The history checker: judges a finished chaos history against the queue's guarantees.

It is a pure function of the events (no I/O), so every verdict can be reproduced from the file.
What must hold, whatever faults were injected:

- no acknowledged enqueue is lost: a key whose enqueue returned ok has its task in the final state;
- no task is completed twice: acks that succeeded on one task all carry the same lease token,
  and no lease of a task starts after an ack of it was acknowledged;
- no unexpected task: every task seen (leased or in the final state) has an idempotency key that
  some enqueue sent, at most one task exists per key, and a key whose every enqueue certainly
  failed has no task;
- at most one leader per term among the leaders observed (Raft paper section 5.2, Election Safety);
- after the drain, every acknowledged task is completed.

What is only measured: duplicate deliveries (at-least-once allows them), the longest window with
no successful write, leader changes and term advances, fault counts.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from dqueue.chaos.history import WRITE_OPS, Event, EventType, Op

CLIENT_OPS = frozenset({Op.ENQUEUE, Op.LEASE, Op.ACK})
EXAMPLES = 10  # how many offending keys or ids a report lists per violation


@dataclass(frozen=True)
class Operation:
    """An invoke paired with its completion; ``outcome`` INFO when it never completed."""

    process: str
    f: Op
    invoke_ms: float
    complete_ms: float | None
    outcome: EventType
    request: dict[str, Any]
    response: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class Window:
    """An interval of the run with no successful write, in history milliseconds."""

    start_ms: float
    end_ms: float

    @property
    def length_ms(self) -> float:
        """How long the window lasted."""
        return round(self.end_ms - self.start_ms, 1)


@dataclass
class Report:
    """Everything the checker found. ``valid`` is False when any guarantee was broken."""

    valid: bool = True
    problems: list[str] = field(default_factory=list)
    op_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    enqueue_keys: int = 0
    acknowledged_enqueues: int = 0
    lost: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    not_drained: list[str] = field(default_factory=list)
    completed_twice: list[str] = field(default_factory=list)
    redelivered_after_ack: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    key_conflicts: list[str] = field(default_factory=list)
    failed_but_present: list[str] = field(default_factory=list)
    tasks_delivered: int = 0
    tasks_delivered_more_than_once: int = 0
    duplicate_deliveries: int = 0
    longest_unavailable_ms: float = 0.0
    unavailable_windows: list[dict[str, float]] = field(default_factory=list)
    leader_changes: int = 0
    terms_advanced: int = 0
    election_safety_violations: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    faults_skipped: dict[str, int] = field(default_factory=dict)
    final_read: bool = False

    def to_plain(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return asdict(self)

    def render(self) -> str:
        """A human summary, one figure per line; lists are cut to their first examples."""
        def count(items: list[str]) -> str:
            shown = ", ".join(items[:EXAMPLES])
            more = f" (+{len(items) - EXAMPLES} more)" if len(items) > EXAMPLES else ""
            return f"{len(items)}" + (f"  [{shown}{more}]" if items else "")

        lines = [f"verdict: {'VALID' if self.valid else 'INVALID'}"]
        lines += [f"  problem: {problem}" for problem in self.problems]
        for op, counts in sorted(self.op_counts.items()):
            lines.append(f"{op}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        lines += [
            f"enqueue keys: {self.enqueue_keys}, acknowledged: {self.acknowledged_enqueues}",
            f"acknowledged enqueues lost: {count(self.lost)}",
            f"acknowledged enqueues not verified by the final read: {count(self.unverified)}",
            f"acknowledged tasks not completed after the drain: {count(self.not_drained)}",
            f"tasks completed more than once: {count(self.completed_twice)}",
            f"tasks leased again after an acknowledged ack: {count(self.redelivered_after_ack)}",
            f"unexpected tasks (never enqueued): {count(self.unexpected)}",
            f"keys with more than one task: {count(self.key_conflicts)}",
            f"keys whose enqueues all failed but a task exists: {count(self.failed_but_present)}",
            f"tasks delivered: {self.tasks_delivered}, delivered more than once: "
            f"{self.tasks_delivered_more_than_once}, duplicate deliveries: "
            f"{self.duplicate_deliveries} (allowed: at-least-once)",
            f"longest window with no successful write: {self.longest_unavailable_ms / 1000:.2f} s",
        ]
        lines += [f"  window {w['start_ms'] / 1000:.2f} s .. {w['end_ms'] / 1000:.2f} s "
                  f"({w['length_ms'] / 1000:.2f} s)" for w in self.unavailable_windows]
        lines += [
            f"leader changes observed: {self.leader_changes}, terms advanced: "
            f"{self.terms_advanced}",
            f"terms with two leaders: {count(self.election_safety_violations)}",
            "faults injected: " + (", ".join(f"{k}={v}" for k, v in sorted(self.faults.items()))
                                   or "none"),
        ]
        if self.faults_skipped:
            lines.append("faults skipped (no leader to aim at): " + ", ".join(
                f"{k}={v}" for k, v in sorted(self.faults_skipped.items())))
        return "\n".join(lines)


def pair_operations(events: Iterable[Event]) -> list[Operation]:
    """Pair each client invoke with the next completion of the same process.

    Raises ValueError on a completion with no invoke in flight, or a second invoke while one is
    in flight: such a history was not written by a well-behaved harness.
    """
    open_ops: dict[str, Event] = {}
    done: list[Operation] = []
    for event in events:
        if event.f not in CLIENT_OPS:
            continue
        pending = open_ops.get(event.process)
        if event.type is EventType.INVOKE:
            if pending is not None:
                raise ValueError(f"event {event.index}: {event.process} invoked twice")
            open_ops[event.process] = event
            continue
        if pending is None or pending.f is not event.f:
            raise ValueError(f"event {event.index}: completion without a matching invoke")
        del open_ops[event.process]
        done.append(Operation(event.process, event.f, pending.time_ms, event.time_ms,
                              event.type, pending.value, event.value, event.error))
    for pending in open_ops.values():
        done.append(Operation(pending.process, pending.f, pending.time_ms, None,
                              EventType.INFO, pending.value, {}, "never completed"))
    return sorted(done, key=lambda op: op.invoke_ms)


def _unavailable_windows(ops: list[Operation], events: list[Event]) -> list[Window]:
    """Intervals between successful writes, from the first invoke to the end of the fault phase."""
    client = [op for op in ops if op.f in WRITE_OPS]
    if not client:
        return []
    start_ms = client[0].invoke_ms
    end_ms = max(op.complete_ms or op.invoke_ms for op in client)
    for event in events:
        if event.f is Op.PHASE and event.value.get("phase") == "drain":
            end_ms = event.time_ms
            break
    oks = sorted(op.complete_ms for op in client
                 if op.outcome is EventType.OK and op.complete_ms is not None
                 and start_ms <= op.complete_ms <= end_ms)
    marks = [start_ms, *oks, end_ms]
    windows = [Window(a, b) for a, b in itertools.pairwise(marks) if b > a]
    return sorted(windows, key=lambda w: (-w.length_ms, w.start_ms))


def _elections(events: list[Event], report: Report) -> None:
    """Leader changes and terms from the health observations; one leader per term at most."""
    leaders: dict[int, set[str]] = defaultdict(set)
    terms: list[int] = []
    for event in events:
        if event.f is not Op.OBSERVE:
            continue
        term, leader = event.value.get("term"), event.value.get("leader_id")
        if not isinstance(term, int):
            continue
        terms.append(term)
        if event.value.get("role") == "leader":
            leader = event.value.get("node")
        if isinstance(leader, str) and leader:
            leaders[term].add(leader)
    # Each (term, leader) pair is one won election; the first one seen is the starting leader.
    report.leader_changes = max(0, sum(len(ids) for ids in leaders.values()) - 1)
    report.terms_advanced = (max(terms) - min(terms)) if terms else 0
    report.election_safety_violations = [
        f"term {term}: {sorted(ids)}" for term, ids in sorted(leaders.items()) if len(ids) > 1]


def check(events: list[Event], expect_drained: bool = True) -> Report:
    """Check one history; see the module docstring for what is judged."""
    report = Report()
    ops = pair_operations(events)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for op in ops:
        label = op.outcome.value
        if op.f is Op.LEASE and op.outcome is EventType.OK and not op.response.get("id"):
            label = "empty"
        counts[op.f.value][label] += 1
    report.op_counts = {op: dict(c) for op, c in counts.items()}

    # Enqueues, grouped by idempotency key: one key may be retried after an unknown outcome.
    outcomes_by_key: dict[str, list[EventType]] = defaultdict(list)
    acked: dict[str, str] = {}  # key -> task id the cluster acknowledged
    task_ids_by_key: dict[str, set[str]] = defaultdict(set)
    key_of: dict[str, str | None] = {}
    for op in ops:
        if op.f is not Op.ENQUEUE:
            continue
        key = str(op.request.get("key"))
        outcomes_by_key[key].append(op.outcome)
        if op.outcome is EventType.OK and op.response.get("id"):
            acked.setdefault(key, str(op.response["id"]))
            task_ids_by_key[key].add(str(op.response["id"]))
            key_of[str(op.response["id"])] = key
    report.enqueue_keys = len(outcomes_by_key)
    report.acknowledged_enqueues = len(acked)

    # Every task seen anywhere: leased by a worker or in the final state.
    final: dict[str, dict[str, Any]] = {}
    missing: set[str] = set()
    for event in events:
        if event.f is not Op.FINAL or not event.value.get("id"):
            continue
        report.final_read = True
        task_id = str(event.value["id"])
        if event.type is EventType.OK:
            final[task_id] = event.value
            key_of.setdefault(task_id, event.value.get("key"))
        elif event.type is EventType.FAIL and event.error == "not_found":
            missing.add(task_id)
    deliveries: Counter[str] = Counter()
    for op in ops:
        if op.f is Op.LEASE and op.outcome is EventType.OK and op.response.get("id"):
            task_id = str(op.response["id"])
            deliveries[task_id] += 1
            key_of.setdefault(task_id, op.response.get("key"))
    for task_id, key in key_of.items():
        if key is None or key not in outcomes_by_key:
            report.unexpected.append(task_id)
            continue
        task_ids_by_key[key].add(task_id)
    report.key_conflicts = sorted(k for k, ids in task_ids_by_key.items() if len(ids) > 1)
    report.failed_but_present = sorted(
        k for k, outcomes in outcomes_by_key.items()
        if task_ids_by_key.get(k) and all(o is EventType.FAIL for o in outcomes))
    report.unexpected.sort()

    # Acknowledged enqueues against the final state.
    if not report.final_read:
        report.problems.append("no final read in the history: losses cannot be checked")
    else:
        for key, task_id in sorted(acked.items()):
            if task_id in missing:
                report.lost.append(f"{key}={task_id}")
            elif task_id not in final:
                report.unverified.append(f"{key}={task_id}")
            elif expect_drained and final[task_id].get("status") != "completed":
                report.not_drained.append(f"{key}={task_id}:{final[task_id].get('status')}")

    # Completions: one lease token per completed task, and no lease after an acknowledged ack.
    tokens: dict[str, set[str]] = defaultdict(set)
    first_ack_ms: dict[str, float] = {}
    for op in ops:
        if op.f is Op.ACK and op.outcome is EventType.OK and op.complete_ms is not None:
            task_id = str(op.request.get("id"))
            tokens[task_id].add(str(op.request.get("token") or op.request.get("worker")))
            first_ack_ms[task_id] = min(first_ack_ms.get(task_id, op.complete_ms),
                                        op.complete_ms)
    report.completed_twice = sorted(t for t, seen in tokens.items() if len(seen) > 1)
    report.redelivered_after_ack = sorted({
        str(op.response["id"]) for op in ops
        if op.f is Op.LEASE and op.outcome is EventType.OK and op.response.get("id")
        and str(op.response["id"]) in first_ack_ms
        and op.invoke_ms > first_ack_ms[str(op.response["id"])]})

    report.tasks_delivered = len(deliveries)
    report.tasks_delivered_more_than_once = sum(1 for n in deliveries.values() if n > 1)
    report.duplicate_deliveries = sum(n - 1 for n in deliveries.values() if n > 1)

    windows = _unavailable_windows(ops, events)
    if windows:
        report.longest_unavailable_ms = windows[0].length_ms
        report.unavailable_windows = [
            {"start_ms": w.start_ms, "end_ms": w.end_ms, "length_ms": w.length_ms}
            for w in windows[:3]]
    _elections(events, report)
    for phase, counts in (("start", report.faults), ("skipped", report.faults_skipped)):
        counts.update(Counter(str(e.value.get("fault")) for e in events
                              if e.f is Op.NEMESIS and e.value.get("phase") == phase))

    broken = {
        "acknowledged enqueues lost": report.lost,
        "acknowledged enqueues not verified": report.unverified,
        "acknowledged tasks not completed after the drain": report.not_drained,
        "tasks completed more than once": report.completed_twice,
        "tasks leased after an acknowledged ack": report.redelivered_after_ack,
        "unexpected tasks": report.unexpected,
        "keys with more than one task": report.key_conflicts,
        "failed enqueues that took effect": report.failed_but_present,
        "terms with two leaders": report.election_safety_violations,
    }
    report.problems += [f"{name}: {len(items)}" for name, items in broken.items() if items]
    report.valid = not report.problems
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m dqueue.chaos.checker HISTORY [--json] [--no-drain]``: exit 0 when valid."""
    import argparse

    from dqueue.chaos.history import load

    parser = argparse.ArgumentParser(description="Check a dqueue chaos history.")
    parser.add_argument("history", help="JSON-lines history file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-drain", action="store_true",
                        help="do not require acknowledged tasks to be completed")
    args = parser.parse_args(argv)
    report = check(load(args.history), expect_drained=not args.no_drain)
    print(json.dumps(report.to_plain(), indent=2) if args.json else report.render())
    return 0 if report.valid else 1


if __name__ == "__main__":
    raise SystemExit(main())
