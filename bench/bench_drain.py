"""End-to-end drain rate: enqueue N tasks, then W workers lease, run a no-op and ack until empty.

    .venv/bin/python bench/bench_drain.py --transport both --nodes 3 --tasks 20000 --workers 4

Starts a fresh cluster of full nodes on 127.0.0.1 (free ports, a temporary directory) for each
transport, enqueues the tasks with the SDK in batches of 1,000, starts the workers as separate
``dqueue-worker`` processes (``--zmq`` to the nodes' gateways or ``--server`` to their HTTP API,
spread round-robin over the nodes), and polls ``/stats`` until every task is completed. Prints
the rates and the CPU time the nodes and the workers spent per drained task (which does not depend
on how busy the machine is, so it gives the ceiling on idle cores); asserts nothing. Every process
it started is killed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dqueue.client import Client  # noqa: E402
from tests.integration.sdk_nodes import NodeCluster  # noqa: E402


def completed(client: Client) -> int:
    return int(client.stats()["tasks"].get("completed", 0))


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its live descendants
    (Linux /proc): a node's supervisor with its Raft and API processes, or a worker."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in cpu.items():
        node = pid
        while node > 1 and node != root:
            node = parent.get(node, 0)
        if node == root:
            total += seconds
    return total


def run_once(args: argparse.Namespace, transport: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dqueue-bench-") as tmp:
        cluster = NodeCluster(Path(tmp), args.nodes)
        try:
            cluster.start()
            leader = cluster.leader()
            client = Client(cluster.urls())
            start = time.monotonic()
            for offset in range(0, args.tasks, 1000):
                n = min(1000, args.tasks - offset)
                client.enqueue_many({"type": "noop", "payload": i} for i in range(n))
            enqueue_s = time.monotonic() - start
            targets = ([cluster.zmq(n) for n in cluster.ids] if transport == "zmq"
                       else [cluster.url(n) for n in cluster.ids])
            if args.connect == "leader":
                targets = [cluster.zmq(leader) if transport == "zmq" else cluster.url(leader)]
            node_groups = [n.proc.pid for n in cluster.nodes.values() if n.proc is not None]
            nodes_cpu_before = sum(tree_cpu_s(g) for g in node_groups)
            start = time.monotonic()
            workers = []
            for i in range(args.workers):
                target = targets[i % len(targets)]
                flag = "--zmq" if transport == "zmq" else "--server"
                extra = [] if args.prefetch is None else ["--prefetch", str(args.prefetch)]
                workers.append(cluster.spawn_worker(
                    flag, target, "--types", "noop", "--concurrency", str(args.concurrency),
                    "--log-level", "warning", *extra, log_name=f"worker-{transport}-{i}"))
            first_at = last_at = None
            low, high = args.tasks * 0.05, args.tasks * 0.95
            low_at = high_at = None
            deadline = start + args.timeout
            done = 0
            while time.monotonic() < deadline:
                done = completed(client)
                now = time.monotonic()
                if done and first_at is None:
                    first_at = now
                if low_at is None and done >= low:
                    low_at, low_done = now, done
                if high_at is None and done >= high:
                    high_at, high_done = now, done
                if done >= args.tasks:
                    last_at = now
                    break
                time.sleep(0.05)
            nodes_cpu = sum(tree_cpu_s(g) for g in node_groups) - nodes_cpu_before
            workers_cpu = sum(tree_cpu_s(p.pid) for p in workers)
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
            for proc in workers:
                proc.wait(30)
            total_s = (last_at or time.monotonic()) - start
            steady = ((high_done - low_done) / (high_at - low_at)
                      if low_at and high_at and high_at > low_at else float("nan"))
            return {"enqueue_per_s": args.tasks / enqueue_s, "completed": done,
                    "total_s": total_s, "overall_per_s": done / total_s,
                    "steady_per_s": steady,
                    "startup_s": (first_at - start) if first_at else float("nan"),
                    "nodes_cpu_ms_per_task": nodes_cpu * 1000 / max(1, done),
                    "workers_cpu_ms_per_task": workers_cpu * 1000 / max(1, done)}
        finally:
            cluster.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--transport", choices=("zmq", "http", "both"), default="both")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--prefetch", type=int, default=None)
    p.add_argument("--connect", choices=("spread", "leader"), default="spread")
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args()
    transports = ["zmq", "http"] if args.transport == "both" else [args.transport]
    for transport in transports:
        r = run_once(args, transport)
        print(f"{transport:4s} nodes={args.nodes} tasks={args.tasks} workers={args.workers} "
              f"concurrency={args.concurrency} connect={args.connect}: "
              f"completed {r['completed']} in {r['total_s']:.1f}s -> "
              f"{r['overall_per_s']:.0f} tasks/s overall (worker start-up included), "
              f"{r['steady_per_s']:.0f} tasks/s between 5% and 95%; "
              f"enqueue {r['enqueue_per_s']:.0f} tasks/s", flush=True)
        cpu_ms = r["nodes_cpu_ms_per_task"] + r["workers_cpu_ms_per_task"]
        print(f"     CPU per drained task: nodes (Raft + API, 3 nodes) "
              f"{r['nodes_cpu_ms_per_task']:.2f} ms, workers "
              f"{r['workers_cpu_ms_per_task']:.2f} ms (start-up included) -> ceiling on "
              f"{os.cpu_count()} idle cores ~{os.cpu_count() * 1000 / cpu_ms:.0f} tasks/s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
