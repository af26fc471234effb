"""Benchmark of a large backlog: does a 3-node cluster stay steady while it holds many tasks?

A queue that holds a million tasks keeps a million objects alive in every Raft process. This
fills such a backlog (16 clients, 100 tasks per enqueue command, nobody leasing) while a probe
client sends one single-task command every 20 ms, and prints (never asserts):

- the fill rate, and the probe's p50/p99/max commit latency;
- elections and leader changes during the fill (a pause longer than the election timeout
  makes the followers elect another leader);
- each member's loop turns that took 200 ms or more (``slow_turn`` in its log) and the longest;
- each member's time in the garbage collector's full collections and its longest one
  (``gc_ms`` in the Raft process's metrics).

Run from the repository root: ``.venv/bin/python bench/bench_backlog.py [--tasks N]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_raft import Driver, pct

from dqueue.protocol import wire
from dqueue.testing.raftproc import RaftCluster

PROBE_INTERVAL_S = 0.02
TASKS_PER_COMMAND = 100


def slow_turns(log_text: str) -> list[dict[str, Any]]:
    """The ``slow_turn`` events (ms, and the drain/ready/snapshot split) of a member's log."""
    found = []
    for line in log_text.splitlines():
        if '"slow_turn"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("ms"), int):
            found.append(event)
    return found


def fill(driver: Driver, probe: zmq.Socket, tasks: int) -> tuple[int, int, list[float], float]:
    """Enqueue ``tasks`` tasks in 100-task commands on every client of ``driver`` while
    ``probe`` sends one single-task command every PROBE_INTERVAL_S; returns
    (tasks acknowledged, errors, probe latencies in seconds, seconds taken)."""
    poller = zmq.Poller()
    for sock in driver.socks:
        poller.register(sock, zmq.POLLIN)
    poller.register(probe, zmq.POLLIN)
    commands = tasks // TASKS_PER_COMMAND
    sent = done = errors = 0
    for sock in driver.socks:
        if sent < commands:
            driver.send(sock, TASKS_PER_COMMAND)
            sent += 1
    probe_lat: list[float] = []
    probe_sent_at: float | None = None
    next_probe = time.perf_counter()
    started = time.perf_counter()
    while done < sent:
        now = time.perf_counter()
        if probe_sent_at is None and now >= next_probe:
            probe_sent_at = driver.send(probe, 1)
            next_probe = now + PROBE_INTERVAL_S
        wait_ms = max(1, int((next_probe - now) * 1000)) if probe_sent_at is None else 100
        for sock, _ in poller.poll(wait_ms):
            kind, _body = wire.decode(sock.recv_multipart())
            if sock is probe:
                if probe_sent_at is not None:
                    probe_lat.append(time.perf_counter() - probe_sent_at)
                probe_sent_at = None
                continue
            done += 1
            if kind != b"res":
                errors += 1
            if sent < commands:
                driver.send(sock, TASKS_PER_COMMAND)
                sent += 1
    return (done - errors) * TASKS_PER_COMMAND, errors, probe_lat, time.perf_counter() - started


def gc_figures(cluster: RaftCluster, node_id: str) -> str:
    """The member's full collections (``gc_ms`` histogram): count, total, longest bucket."""
    metrics = cluster.client(node_id).read({"op": "metrics"})
    hist = metrics.get("gc_ms")
    if not isinstance(hist, dict):
        return "(no gc_ms figure)"
    longest, below = "none", 0
    for bound, cumulative in hist["buckets"]:
        if cumulative > below:
            longest, below = bound, cumulative
    return (f"{hist['count']} collections, {hist['sum']:.0f} ms in all, longest <= {longest} ms, "
            f"{metrics.get('gc_frozen_objects')} objects frozen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="backlog to build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dq-backlog-") as root:
        cluster = RaftCluster(Path(root), 3)
        for node_id, config in cluster.configs.items():  # JSON lines, to read slow_turn events
            cluster.configs[node_id] = dataclasses.replace(config, log_format="json")
        try:
            cluster.start()
            leader = cluster.leader()
            endpoint = cluster.configs[leader].ipc_endpoint()
            term_before = cluster.health(leader)["term"]
            print(f"cluster up, leader {leader}; cpus={os.cpu_count()} "
                  f"load={os.getloadavg()[0]:.2f}; filling {args.tasks} tasks")
            driver = Driver(endpoint, 16)
            probe = driver.ctx.socket(zmq.DEALER)
            probe.setsockopt(zmq.LINGER, 0)
            probe.connect(endpoint)
            acked, errors, probe_lat, seconds = fill(driver, probe, args.tasks)
            probe.close()
            driver.close()
            print(f"filled {acked} tasks in {seconds:.1f} s = {acked / seconds:.0f} tasks/s, "
                  f"{errors} failed commands")
            if probe_lat:
                print(f"probe (1 task every {PROBE_INTERVAL_S * 1000:.0f} ms): "
                      f"{len(probe_lat)} commits  p50 {pct(probe_lat, 50):.1f} ms  "
                      f"p99 {pct(probe_lat, 99):.1f} ms  max {pct(probe_lat, 100):.1f} ms")
            leader_after = cluster.leader()
            term_after = cluster.health(leader_after)["term"]
            print(f"elections during the fill: term {term_before} -> {term_after}, "
                  f"leader {leader} -> {leader_after}")
            for node_id in cluster.ids:
                turns = slow_turns(cluster.log_text(node_id))
                longest = ""
                if turns:
                    worst = max(turns, key=lambda event: event["ms"])
                    longest = (f", longest {worst['ms']} ms (drain {worst.get('drain_ms')}, "
                               f"ready {worst.get('ready_ms')}, "
                               f"snapshot {worst.get('snapshot_ms')})")
                print(f"  {node_id}: {len(turns)} loop turns >= 200 ms{longest}; "
                      f"{gc_figures(cluster, node_id)}")
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
