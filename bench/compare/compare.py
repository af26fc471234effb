"""Side by side: NATS JetStream, RabbitMQ and dqueue, 3 nodes each on loopback, W1 to W4.

One system at a time (a fresh cluster for each, in a temporary folder), in the order NATS,
RabbitMQ, dqueue over HTTP, dqueue through the SDK, and that whole round ``--runs`` times, so
that the ratios of one round are measured under the same machine load. Prints a table of each
system's median and range and dqueue's ratio to NATS JetStream. A benchmark: it prints and
never fails on a slow or broken system (that system's cells say why).

Usage (``bench/compare/run.sh`` installs the servers and clients first):
``.venv/bin/python bench/compare/compare.py [--runs 3] [--quick] [--systems nats,rabbitmq,...]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import workloads
from clusters import (
    ROOT,
    Cluster,
    DqueueCluster,
    NatsCluster,
    RabbitCluster,
    parse_version,
    port_is_free,
)
from report import render
from workloads import Plan

SYSTEMS = ("nats", "rabbitmq", "dqueue-http", "dqueue-sdk")
QUICK = Plan(w1_s=3.0, w2_s=3.0, w3_preload=3_000, w3_s=3.0, w4_before_kill_s=2.0,
             w4_after_kill_s=6.0)


def make_cluster(system: str, work_dir: Path, base_port: int) -> Cluster:
    """A fresh, not yet started cluster of ``system``."""
    if system == "nats":
        return NatsCluster(work_dir, base_port)
    if system == "rabbitmq":
        return RabbitCluster(work_dir, base_port)
    return DqueueCluster(work_dir, base_port)


def run_system(system: str, plan: Plan, work_dir: Path, base_port: int,
               log: Any) -> dict[str, Any]:
    """Start ``system``, run W1 to W4 on it, stop it; one dict of figures (``error`` keys say
    what failed)."""
    kind = system
    cluster = make_cluster(system, work_dir, base_port)
    figures: dict[str, Any] = {}
    t_start = time.monotonic()
    try:
        cluster.start()
        log(f"  {system}: cluster up in {time.monotonic() - t_start:.1f} s")
        for name, step in (("W1", _w1), ("W2", _w2), ("W3", _w3), ("W4", _w4)):
            try:
                figures[name] = step(cluster, kind, plan)
            except Exception as exc:  # reported in the table, the run goes on
                figures[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                traceback.print_exc(file=sys.stderr)
            log(f"  {system} {name}: {json.dumps(figures[name], default=str)}")
    except Exception as exc:  # a system that cannot start is reported
        figures["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        traceback.print_exc(file=sys.stderr)
        log(f"  {system}: could not run: {figures['error']}")
    finally:
        try:
            cluster.stop()
        except Exception:  # keep tearing down the others
            traceback.print_exc(file=sys.stderr)
    return figures


def _w1(cluster: Cluster, kind: str, plan: Plan) -> dict[str, Any]:
    cluster.prepare("W1")
    return workloads.w1(cluster.leader_target(kind, "W1"), plan)


def _w2(cluster: Cluster, kind: str, plan: Plan) -> dict[str, Any]:
    cluster.prepare("W2")
    return workloads.w2(cluster.leader_target(kind, "W2"), plan)


def _w3(cluster: Cluster, kind: str, plan: Plan) -> dict[str, Any]:
    cluster.prepare("W3", consumer=True)
    target = cluster.leader_target(kind, "W3")
    stored = workloads.preload(target, plan.w3_preload)
    if stored < plan.w3_preload:
        raise RuntimeError(f"preload stored {stored} of {plan.w3_preload}")
    return workloads.w3(target, plan)


def _w4(cluster: Cluster, kind: str, plan: Plan) -> dict[str, Any]:
    cluster.prepare("W4")
    target = dataclasses.replace(cluster.follower_target(kind, "W4"), timeout_s=plan.attempt_s)
    return workloads.w4(target, plan, lambda: cluster.kill_leader("W4"),
                        lambda: cluster.live_target(kind, "W4"))


def versions() -> dict[str, str]:
    """The versions of the servers, for the report."""
    out: dict[str, str] = {}
    try:
        out["nats"] = parse_version(subprocess.run(["nats-server", "--version"],
                                                   capture_output=True, text=True).stdout)
    except OSError:
        out["nats"] = "not installed"
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"],
                              capture_output=True, text=True)
        out["rabbitmq"] = done.stdout.strip() or "not installed"
    except OSError:
        out["rabbitmq"] = "?"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    if commit:
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True).stdout
        out["dqueue"] = commit + (" with uncommitted changes" if dirty.strip() else "")
    else:
        # A tree exported with `git archive` has no history: its exporter names the commit.
        out["dqueue"] = os.environ.get("DQ_COMPARE_COMMIT", "?")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds over every system (3)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (seconds each)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--base-port", type=int, default=24000,
                        help="NATS and RabbitMQ use base+1 to base+40 (24000); dqueue takes "
                             "free ports")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}")
    plan = QUICK if args.quick else Plan()
    busy = [p for p in range(args.base_port + 1, args.base_port + 41) if not port_is_free(p)]
    if busy:
        print(f"compare: ports in use: {busy[:10]}; pick another --base-port", file=sys.stderr)
        return 0

    # SIGTERM tears down like Ctrl-C: every cluster's finally block kills what it started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    def log(line: str) -> None:
        print(line, flush=True)

    info = versions()
    log(f"compare: {args.runs} round(s) of {', '.join(systems)}; {plan.describe()}")
    log(f"compare: nats-server {info['nats']}, rabbitmq-server {info['rabbitmq']}, "
        f"dqueue {info['dqueue']}")
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        for index in range(args.runs):
            log(f"round {index + 1} of {args.runs}")
            results: dict[str, dict[str, Any]] = {}
            for system in systems:
                work_dir = Path(tempfile.mkdtemp(prefix=f"dq-compare-{system}-"))
                try:
                    results[system] = run_system(system, plan, work_dir, args.base_port, log)
                finally:
                    shutil.rmtree(work_dir, ignore_errors=True)
            rounds.append(results)
    except KeyboardInterrupt:
        log("compare: interrupted; figures of the finished rounds follow")
    if args.json:
        Path(args.json).write_text(json.dumps({"plan": dataclasses.asdict(plan),
                                               "versions": info, "rounds": rounds},
                                              indent=1, default=str))
    print()
    print(render(rounds, systems, plan, info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
