"""End-to-end drain rate: enqueue N tasks, then W workers lease, run a no-op and ack until empty.

    .venv/bin/python bench/bench_drain.py --transport both --nodes 3 --tasks 20000 --workers 4
    .venv/bin/python bench/bench_drain.py --transport stub --tasks 40000 --workers 4

Starts a fresh cluster of full nodes on 127.0.0.1 (free ports, a temporary directory) for each
transport, enqueues the tasks with the SDK in batches of 1,000, starts the workers as separate
``dqueue-worker`` processes (``--zmq`` to the nodes' gateways or ``--server`` to their HTTP API,
spread round-robin over the nodes), and polls ``/stats`` until every task is completed. Prints
the rates and the CPU time the nodes and the workers spent per drained task (which does not depend
on how busy the machine is, so it gives the ceiling on idle cores), split by process (Raft and API
processes of the leader and of the followers), and over ZeroMQ the tasks per lease request and
the acks per ack command the gateways saw; asserts nothing. Every process it started is killed at
the end.

``--transport stub`` measures the worker runtime alone: the workers drain made-up tasks from a
stub gateway in the benchmark's own process that answers at once (no cluster).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import zmq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dqueue.client import Client  # noqa: E402
from dqueue.protocol import wire  # noqa: E402
from dqueue.testing.cluster import NodeCluster  # noqa: E402


def completed(client: Client) -> int:
    return int(client.stats()["tasks"].get("completed", 0))


def _proc_table() -> tuple[dict[int, int], dict[int, float], dict[int, str]]:
    """Parent, CPU seconds (user + system) and command line of every process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    cmd: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    return parent, cpu, cmd


def tree_cpu_s(root: int) -> dict[str, float]:
    """CPU seconds used so far by process ``root`` and its live descendants, by role: ``raft``
    (``dqueue.node``), ``api`` (``dqueue.api``) and ``other`` (a supervisor, a worker)."""
    parent, cpu, cmd = _proc_table()
    out = {"raft": 0.0, "api": 0.0, "other": 0.0}
    for pid, seconds in cpu.items():
        node = pid
        while node > 1 and node != root:
            node = parent.get(node, 0)
        if node == root:
            text = cmd.get(pid, "")
            role = ("raft" if " -m dqueue.node" in text else
                    "api" if " -m dqueue.api" in text else "other")
            out[role] += seconds
    return out


def total_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and its live descendants, all roles."""
    return sum(tree_cpu_s(root).values())


class StubGateway:
    """A worker gateway that answers at once from memory, to measure the worker runtime alone.

    It serves the worker protocol (docs/worker-protocol.md) on its own thread and socket: a lease
    takes the next tasks of ``tasks`` made-up ones, an ack completes one. No Raft process, no
    validation: only what a worker needs to drain.
    """

    def __init__(self, tasks: int) -> None:
        self.total = tasks
        self.leased = 0
        self.acked = 0
        self.messages_in = 0
        self.first_lease_at: float | None = None
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.endpoint = ""
        self._thread = threading.Thread(target=self._run, name="stub-gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _task(self, index: int, worker_id: str) -> dict[str, Any]:
        now_ms = int(time.time() * 1000)
        return {"id": f"t{index:08d}", "type": "noop", "payload": index, "priority": 0,
                "max_retries": 3, "attempts": 1, "status": "leased", "idempotency_key": None,
                "created_at_ms": now_ms, "updated_at_ms": now_ms, "visible_at_ms": now_ms,
                "lease": {"worker_id": worker_id, "token": f"{index}.1",
                          "expires_at_ms": now_ms + 30_000},
                "last_error": None}

    def _run(self) -> None:
        ctx = zmq.Context()
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.ready.set()
        waiting: list[tuple[bytes, Any, int, str]] = []
        try:
            while not self._stop.is_set():
                if not router.poll(50):
                    continue
                while True:
                    try:
                        identity, *frames = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.messages_in += 1
                    kind, body = wire.decode(frames)
                    rid = body.get("rid")
                    if kind == b"lease":
                        if self.first_lease_at is None:
                            self.first_lease_at = time.monotonic()
                        waiting.append((identity, rid, body.get("max_tasks") or 1,
                                        body["worker_id"]))
                    elif kind in (b"ack", b"nack", b"extend"):
                        if kind == b"ack":
                            self.acked += 1
                        task = self._task(int(body["id"][1:]), body["worker_id"])
                        router.send_multipart([identity, *wire.encode(
                            b"res", {"rid": rid, "task": task})])
                    elif kind == b"ack_many":
                        items = body["items"]
                        self.acked += len(items)
                        router.send_multipart([identity, *wire.encode(
                            b"acked", {"rid": rid, "results": [None] * len(items)})])
                    elif kind == b"ping":
                        router.send_multipart([identity, *wire.encode(b"pong", {"rid": rid})])
                while waiting and self.leased < self.total:
                    identity, rid, max_tasks, worker_id = waiting.pop(0)
                    n = min(max_tasks, self.total - self.leased)
                    tasks = [self._task(self.leased + i, worker_id) for i in range(n)]
                    self.leased += n
                    router.send_multipart([identity, *wire.encode(
                        b"tasks", {"rid": rid, "tasks": tasks})])
        finally:
            router.close(0)
            ctx.term()


def run_stub(args: argparse.Namespace) -> dict[str, float]:
    """Drain ``args.tasks`` made-up tasks from a StubGateway: the workers' CPU alone."""
    with tempfile.TemporaryDirectory(prefix="dqueue-bench-") as tmp:
        stub = StubGateway(args.tasks)
        stub.start()
        workers: list[subprocess.Popen[bytes]] = []
        try:
            extra = [] if args.prefetch is None else ["--prefetch", str(args.prefetch)]
            for i in range(args.workers):
                with open(Path(tmp) / f"worker-{i}.log", "ab") as log:
                    workers.append(subprocess.Popen(
                        [sys.executable, "-m", "dqueue.worker.main", "--zmq", stub.endpoint,
                         "--types", "noop", "--concurrency", str(args.concurrency),
                         "--log-level", "warning", *extra],
                        stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
                        env={**os.environ, "PYTHONPATH": str(ROOT)}))
            deadline = time.monotonic() + args.timeout
            while stub.acked < args.tasks // 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            start, acked_at_start = time.monotonic(), stub.acked
            cpu_start = sum(total_cpu_s(p.pid) for p in workers)
            while stub.acked < args.tasks and time.monotonic() < deadline:
                time.sleep(0.01)
            elapsed = time.monotonic() - start
            cpu = sum(total_cpu_s(p.pid) for p in workers) - cpu_start
            acked = stub.acked - acked_at_start
            return {"acked": stub.acked, "rate": acked / elapsed,
                    "workers_cpu_ms_per_task": cpu * 1000 / max(1, acked),
                    "messages_per_task": stub.messages_in / max(1, stub.acked)}
        finally:
            for proc in workers:
                proc.kill()
                proc.wait(10)
            stub.stop()


def gateway_metrics(http_addr: str) -> dict[str, float]:
    """The worker gateway's counters on a node's ``/metrics`` (sample name with its labels)."""
    with urllib.request.urlopen(f"http://{http_addr}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("dqueue_gateway_") and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


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
            node_groups = {nid: n.proc.pid for nid, n in cluster.nodes.items()
                           if n.proc is not None}
            nodes_cpu_before = {nid: tree_cpu_s(g) for nid, g in node_groups.items()}
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
            workers_cpu_at_first = 0.0
            done_at_first = 0
            low, high = args.tasks * 0.05, args.tasks * 0.95
            low_at = high_at = None
            deadline = start + args.timeout
            done = 0
            while time.monotonic() < deadline:
                done = completed(client)
                now = time.monotonic()
                if done and first_at is None:
                    first_at = now
                    workers_cpu_at_first = sum(total_cpu_s(p.pid) for p in workers)
                    done_at_first = done
                if low_at is None and done >= low:
                    low_at, low_done = now, done
                if high_at is None and done >= high:
                    high_at, high_done = now, done
                if done >= args.tasks:
                    last_at = now
                    break
                time.sleep(0.05)
            nodes_after = {nid: tree_cpu_s(g) for nid, g in node_groups.items()}
            metrics: dict[str, float] = {}
            for nid in cluster.ids:
                for name, value in gateway_metrics(cluster.http_addr[nid]).items():
                    metrics[name] = metrics.get(name, 0.0) + value
            leased = metrics.get("dqueue_gateway_tasks_leased_total", 0.0)
            lease_requests = metrics.get('dqueue_gateway_requests_total{kind="lease"}', 0.0)
            ack_commands = metrics.get("dqueue_gateway_ack_commands_total", 0.0)
            roles: dict[str, float] = {}
            for nid, after in nodes_after.items():
                kind = "leader" if nid == leader else "follower"
                for role, seconds in after.items():
                    key = f"{kind}_{role}"
                    roles[key] = roles.get(key, 0.0) + seconds - nodes_cpu_before[nid][role]
            nodes_cpu = sum(roles.values())
            workers_cpu = sum(total_cpu_s(p.pid) for p in workers)
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
                    "workers_cpu_ms_per_task": workers_cpu * 1000 / max(1, done),
                    "workers_steady_cpu_ms_per_task": (workers_cpu - workers_cpu_at_first)
                    * 1000 / max(1, done - done_at_first),
                    "tasks_per_lease_request": leased / max(1.0, lease_requests),
                    "acks_per_ack_command": done / max(1.0, ack_commands),
                    "roles_ms_per_task": {k: v * 1000 / max(1, done)
                                          for k, v in sorted(roles.items())}}
        finally:
            cluster.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--transport", choices=("zmq", "http", "both", "stub"), default="both")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--prefetch", type=int, default=None)
    p.add_argument("--connect", choices=("spread", "leader"), default="spread")
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args()
    transports = ["zmq", "http"] if args.transport == "both" else [args.transport]
    if args.transport == "stub":
        r = run_stub(args)
        print(f"stub gateway tasks={args.tasks} workers={args.workers} "
              f"concurrency={args.concurrency} prefetch={args.prefetch}: {r['rate']:.0f} tasks/s, "
              f"workers' CPU {r['workers_cpu_ms_per_task'] * 1000:.0f} us per task (5% to 100%), "
              f"{r['messages_per_task']:.2f} worker messages per task", flush=True)
        return 0
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
              f"{r['workers_cpu_ms_per_task']:.2f} ms (start-up included; "
              f"{r['workers_steady_cpu_ms_per_task']:.2f} ms after the first ack) -> ceiling on "
              f"{os.cpu_count()} idle cores ~{os.cpu_count() * 1000 / cpu_ms:.0f} tasks/s",
              flush=True)
        print("     nodes by process, ms per task: " + ", ".join(
            f"{k} {v:.3f}" for k, v in r["roles_ms_per_task"].items()
            if not k.endswith("other")), flush=True)
        if transport == "zmq":
            print(f"     tasks per lease request {r['tasks_per_lease_request']:.1f}, "
                  f"acks per ack command {r['acks_per_ack_command']:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
