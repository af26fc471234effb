"""Benchmark: what client sessions cost a follower's apply (Raft dissertation section 6.3).

A follower used to apply the commands nobody waits for on it with ``reply=False`` (no plain
forms of tasks). A command proposed in a client session must have its outcome recorded on
every member (a follower may lead and answer the repeat), so it is applied with the outcome
built, plus the session bookkeeping. This measures, per command kind, the CPU time of:

- ``no session, reply=False``: the follower before sessions;
- ``session, reply=False``: the follower now (``sessions.apply_once``);
- ``no session, reply=True``: the leader's apply, for comparison;

with ``first_unanswered`` trailing each serial number by ``--in-flight`` commands (the client's
window), and the session table's size at the end.

Run from the repository root: ``.venv/bin/python bench/bench_sessions.py [--count N]``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dqueue.queue import Ack, Enqueue, Lease, NewTask, QueueState
from dqueue.queue.sessions import ClientSession, apply_once

MODES = ("no session, reply=False", "session, reply=False", "no session, reply=True")


def commands(count: int) -> dict[str, list[Any]]:
    """``count`` single-task enqueues, single-task leases of them and their acks."""
    payload = {"to": "user@example.com", "body": "x" * 200}
    enqueues = [Enqueue(tasks=(NewTask(id=f"{i:032x}", type="email", payload=payload),),
                        now_ms=1_000 + i) for i in range(count)]
    leases = [Lease(worker_id="w1", types=None, max_tasks=1, now_ms=1_000 + count + i)
              for i in range(count)]
    return {"enqueue": enqueues, "lease": leases}


def run(mode: str, plan: dict[str, list[Any]],
        in_flight: int) -> tuple[dict[str, float], QueueState]:
    """Apply the plan in one mode; return CPU microseconds per command of each kind."""
    state = QueueState()
    index = 0
    seq = 0
    out: dict[str, float] = {}
    kinds: list[tuple[str, list[Any] | None]] = [("enqueue", plan["enqueue"]),
                                                 ("lease", plan["lease"]), ("ack", None)]
    for kind, cmds in kinds:
        if cmds is None:  # acks of what was leased, with the token the lease gave
            count = len(plan["lease"])
            cmds = [Ack(id=f"{i:032x}", worker_id="w1", token=None, now_ms=10**7 + i)
                    for i in range(count)]
        apply: Callable[[Any, int, int], Any]
        if mode == MODES[0]:
            def apply(cmd: Any, i: int, s: int) -> Any:
                return state.apply(cmd, i, False)
        elif mode == MODES[1]:
            def apply(cmd: Any, i: int, s: int) -> Any:
                return apply_once(state, cmd, i, ClientSession("n2.bench", s,
                                                               max(1, s - in_flight)), False)
        else:
            def apply(cmd: Any, i: int, s: int) -> Any:
                return state.apply(cmd, i, True)
        gc.collect()
        started = time.process_time()
        for cmd in cmds:
            index += 1
            seq += 1
            apply(cmd, index, seq)
        out[kind] = (time.process_time() - started) / len(cmds) * 1e6
    return out, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="commands of each kind")
    parser.add_argument("--in-flight", type=int, default=64,
                        help="how far first_unanswered trails the serial number")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    plan = commands(args.count)
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for mode in MODES:
            got, state = run(mode, plan, args.in_flight)
            best[mode] = {k: min(v, best.get(mode, {}).get(k, v)) for k, v in got.items()}
            if mode == MODES[1]:
                kept = state.sessions.outcomes_kept()
                table_bytes = len(json.dumps(state.sessions.to_plain()))
    print(f"{args.count:,} commands of each kind, first_unanswered {args.in_flight} behind; "
          f"CPU microseconds per command (best of {args.rounds}):")
    print(f"{'':26}" + "".join(f"{k:>10}" for k in ("enqueue", "lease", "ack")))
    for mode in MODES:
        print(f"{mode:26}" + "".join(f"{best[mode][k]:10.2f}" for k in ("enqueue", "lease",
                                                                          "ack")))
    before, after = best[MODES[0]], best[MODES[1]]
    print("follower cost of sessions: " + ", ".join(
        f"{k} +{after[k] - before[k]:.2f} us ({(after[k] / before[k] - 1) * 100:+.0f}%)"
        for k in ("enqueue", "lease", "ack")))
    print(f"session table at the end: 1 client, {kept} outcomes kept, "
          f"{table_bytes:,} bytes in a snapshot")


if __name__ == "__main__":
    main()
