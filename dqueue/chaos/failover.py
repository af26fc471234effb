"""``scripts/demo-failover.sh``: kill the leader of the local cluster and watch it recover.

One round: find the leader, enqueue tasks through it, ``kill -9`` it, time how long the other
nodes take to elect a new leader and to accept a write again, check that every enqueued task is
still there, restart the old node and time how long it takes to rejoin and catch up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from dqueue.chaos.localcluster import ROOT, LocalCluster, print_status
from dqueue.testing.processes import health, http_json
from dqueue.testing.waits import wait_until


def step(text: str) -> None:
    """Print one step of the demo as it happens."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def enqueue(addr: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """One enqueue; the task on success, None on any error."""
    try:
        status, answer = http_json(addr, "POST", "/tasks", body, timeout_s=2.0)
    except OSError:
        return None
    return answer if status in (200, 201) and isinstance(answer, dict) else None


def one_round(cluster: LocalCluster, tasks: int, round_no: int, timeout_s: float) -> dict[str, Any]:
    """Run one failover round and return its figures."""
    leader = wait_until(cluster.leader, timeout_s, 0.1)
    if leader is None:
        raise SystemExit("failover: no leader to start from")
    old = health(cluster.http_addr(leader)) or {}
    old_term = int(old.get("term", 0))
    step(f"leader is {leader} (term {old_term}); enqueueing {tasks} tasks through it")
    ids = []
    for i in range(tasks):
        key = f"failover-{os.getpid()}-{round_no}-{i}-{time.time_ns()}"
        task = enqueue(cluster.http_addr(leader),
                       {"type": "demo", "payload": {"n": i}, "idempotency_key": key})
        if task is None:
            raise SystemExit(f"failover: enqueue {i} failed before the kill")
        ids.append(task["id"])
    step(f"enqueued {len(ids)} tasks; kill -9 {leader}")
    others = [n for n in cluster.nodes() if n != leader]
    killed_at = time.monotonic()
    cluster.kill(leader)

    def new_leader() -> tuple[str, int] | None:
        for node in others:
            body = health(cluster.http_addr(node), 0.5)
            if body and body.get("role") == "leader" and int(body.get("term", 0)) > old_term:
                return node, int(body["term"])
        return None

    elected = wait_until(new_leader, timeout_s, 0.02)
    if not elected:
        raise SystemExit(f"failover: no new leader within {timeout_s:g} s")
    elected_s = time.monotonic() - killed_at
    winner, new_term = elected
    step(f"new leader {winner} (term {new_term}) after {elected_s:.3f} s")
    probe = {"type": "demo", "payload": {"probe": True},
             "idempotency_key": f"failover-probe-{os.getpid()}-{round_no}-{time.time_ns()}"}
    wrote = wait_until(lambda: enqueue(cluster.http_addr(winner), probe), timeout_s, 0.02)
    write_s = time.monotonic() - killed_at
    step(f"first write accepted {write_s:.3f} s after the kill" if wrote
         else "no write accepted after the kill")
    present = 0
    for task_id in ids:
        try:
            status, _ = http_json(cluster.http_addr(winner), "GET", f"/tasks/{task_id}")
        except OSError:
            status = 0
        present += status == 200
    step(f"{present}/{len(ids)} enqueued tasks present on the new leader")
    for task_id in [*ids, *([wrote["id"]] if wrote else [])]:  # leave no demo tasks behind
        with contextlib.suppress(OSError):
            http_json(cluster.http_addr(winner), "POST", f"/tasks/{task_id}/cancel", {})
    restarted_at = time.monotonic()
    cluster.start(leader)

    def rejoined() -> bool:
        mine = health(cluster.http_addr(leader), 0.5)
        boss = health(cluster.http_addr(winner), 0.5)
        return bool(mine and boss and mine.get("leader_id") == boss.get("node_id")
                    and mine.get("role") == "follower"
                    and int(mine.get("applied_index", -1)) >= int(boss.get("commit_index", 0)))

    back = wait_until(rejoined, timeout_s * 2, 0.05)
    rejoin_s = time.monotonic() - restarted_at
    step(f"{leader} rejoined as a follower and caught up in {rejoin_s:.3f} s" if back
         else f"{leader} did not rejoin within {timeout_s * 2:g} s")
    return {"round": round_no, "killed": leader, "new_leader": winner, "old_term": old_term,
            "new_term": new_term, "election_s": round(elected_s, 3),
            "first_write_s": round(write_s, 3) if wrote else None, "tasks": len(ids),
            "present": present, "rejoined": bool(back), "rejoin_s": round(rejoin_s, 3)}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/demo-failover.sh``; exits 1 if a task was lost."""
    parser = argparse.ArgumentParser(prog="demo-failover.sh", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="failover rounds (1)")
    parser.add_argument("--tasks", type=int, default=20, help="tasks enqueued per round (20)")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--json", default="", help="also write the figures to this file")
    parser.add_argument("--conf-dir", default=os.environ.get(
        "DQ_CONF_DIR", str(ROOT / "conf" / "cluster-3")))
    parser.add_argument("--run-dir", default=os.environ.get(
        "DQ_RUN_DIR", str(ROOT / "run" / "cluster")))
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(Path(args.conf_dir).resolve(), run_dir)
    started_here = [n for n in cluster.nodes() if cluster.pid(n) is None]
    for node in started_here:
        cluster.start(node)
    rounds = []
    try:
        for round_no in range(1, args.runs + 1):
            if args.runs > 1:
                step(f"--- round {round_no}/{args.runs}")
            rounds.append(one_round(cluster, args.tasks, round_no, args.timeout))
        print_status(cluster)
    finally:
        if len(started_here) == len(cluster.nodes()):
            step("stopping the cluster this demo started")
            for node in cluster.nodes():
                cluster.stop(node)
    elections = [r["election_s"] for r in rounds]
    writes = [r["first_write_s"] for r in rounds if r["first_write_s"] is not None]
    summary = {"rounds": rounds, "election_s": _spread(elections),
               "first_write_s": _spread(writes),
               "lost": sum(r["tasks"] - r["present"] for r in rounds)}
    print(f"failover over {len(rounds)} round(s): election {_fmt(summary['election_s'])}; "
          f"first write {_fmt(summary['first_write_s'])}; tasks lost: {summary['lost']}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    ok = summary["lost"] == 0 and all(r["rejoined"] for r in rounds) and len(writes) == len(rounds)
    return 0 if ok else 1


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "median": round(statistics.median(values), 3),
            "max": max(values), "mean": round(statistics.fmean(values), 3)}


def _fmt(spread: dict[str, float]) -> str:
    if not spread:
        return "n/a"
    return (f"min {spread['min']:.3f} s, median {spread['median']:.3f} s, "
            f"max {spread['max']:.3f} s")


if __name__ == "__main__":
    sys.exit(main())
