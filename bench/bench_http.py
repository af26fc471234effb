"""HTTP benchmark: enqueue rate of a real 3-node cluster next to a no-op Falcon endpoint.

Measures, in one run on this machine:

1. a no-op Falcon ``POST`` endpoint on waitress (same thread count as the API), the ceiling;
2. ``POST /tasks`` on the real app with a stub Raft client that answers at once (API cost);
3. ``POST /tasks`` (one task per request) against the leader of a real 3-node loopback cluster;
4. the same spread over all three members (followers forward to the leader);
5. ``POST /tasks/batch`` with batches of 100, in tasks per second.

Each line also gives the CPU time the servers (every process of the cluster) spent per answer
during the measured window: a figure much less sensitive than rates to how busy the machine is.
For the cluster it is split by process (each API and Raft process, leader first, and the three
supervisors together), with the leader's tasks per enqueue command, log entries and fsyncs per
answer (from its /metrics). ``--phases`` runs a subset (the no-op always runs: it is the yardstick).
Every load uses the same client: CLIENTS keep-alive connections spread over a few processes
(each a few threads with a minimal HTTP/1.1 client), so the load generator stays cheap. Prints
figures; asserts nothing. Usage: ``.venv/bin/python bench/bench_http.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dqueue.testing import free_port  # noqa: E402
from dqueue.testing.cluster import NodeCluster, wait_http  # noqa: E402
from dqueue.testing.http import Http  # noqa: E402

CLIENTS = 16
PROCESSES = 4
# Time given to the load processes to start before the measured window opens.
SPAWN_S = 4.0

NOOP_SERVER = """
import sys, falcon, waitress
class Noop:
    def on_post(self, req, resp):
        req.bounded_stream.read()
        resp.status = falcon.HTTP_201
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b'{"id":"0","status":"pending"}'
app = falcon.App()
app.add_route("/tasks", Noop())
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]),
               asyncore_use_poll=True, connection_limit=1000, _quiet=True)
"""

# The real app (create_app) on waitress, with a stub Raft client that answers every enqueue at
# once: the API process's own cost, without Raft.
STUB_API_SERVER = """
import sys, waitress
from prometheus_client import CollectorRegistry
from dqueue.api.app import create_app
from dqueue.config import NodeConfig
class Stub:
    def command(self, cmd, timeout_ms=5000, wait_ms=0):
        # The plain form of a new task, as the queue answers it.
        tasks = [{"id": t["id"], "type": t["type"], "payload": t["payload"],
                  "priority": t.get("priority") or 0, "max_retries": t.get("max_retries") or 3,
                  "attempts": 0, "status": "pending", "idempotency_key": t.get("idempotency_key"),
                  "created_at_ms": 0, "updated_at_ms": 0, "visible_at_ms": 0, "lease": None,
                  "last_error": None} for t in cmd["tasks"]]
        return {"ok": True, "value": {"tasks": tasks, "duplicates": [False] * len(tasks)}}
    def read(self, query, timeout_ms=5000, stale=False):
        return {}
    def close(self):
        pass
config = NodeConfig(id="stub", http_threads=int(sys.argv[2]))
app = create_app(Stub, config, CollectorRegistry())
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]),
               asyncore_use_poll=True, connection_limit=1000, _quiet=True)
"""


def request_bytes(addr: str, path: str, body: bytes) -> bytes:
    """One keep-alive HTTP/1.1 POST, ready to send."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_response(sock: socket.socket, buf: bytearray) -> int:
    """Read one response from ``sock`` (leftover bytes stay in ``buf``); return its status."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head_end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:head_end]).decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    while len(buf) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    del buf[: head_end + length]
    return int(head.split(" ", 2)[1])


def client_loop(
    addr: str, payload: bytes, start_at: float, stop_at: float, out: list[dict[int, int]]
) -> None:
    """One keep-alive client: from ``start_at`` send, read, repeat until ``stop_at``."""
    host, _, port = addr.rpartition(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    time.sleep(max(0.0, start_at - time.monotonic()))  # every client starts together
    buf = bytearray()
    counts: dict[int, int] = {}
    while time.monotonic() < stop_at:
        sock.sendall(payload)
        status = read_response(sock, buf)
        counts[status] = counts.get(status, 0) + 1
    sock.close()
    out.append(counts)


def process_main(args: tuple[list[str], str, bytes, int, float, float]) -> dict[int, int]:
    """One load process: ``threads`` clients, addresses taken round robin."""
    addrs, path, body, threads, start_at, stop_at = args
    out: list[dict[int, int]] = []
    workers = []
    for i in range(threads):
        addr = addrs[i % len(addrs)]
        payload = request_bytes(addr, path, body)
        client_args = (addr, payload, start_at, stop_at, out)
        workers.append(threading.Thread(target=client_loop, args=client_args))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return merge(out)


def merge(counts: list[dict[int, int]]) -> dict[int, int]:
    """Sum answer counts by status."""
    total: dict[int, int] = {}
    for one in counts:
        for status, n in one.items():
            total[status] = total.get(status, 0) + n
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time consumed so far by one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    """One load run: 2xx answers per second, the other answers, server CPU per 2xx answer.

    ``split_us`` is the CPU per 2xx answer of each named group of server processes.
    """

    rate: float
    others: str
    cpu_us: float
    split_us: dict[str, float]


def load(
    addrs: list[str], path: str, body: bytes, seconds: float, pids: dict[str, list[int]]
) -> Result:
    """Run CLIENTS clients for ``seconds`` against ``addrs``; ``pids`` are the servers by name."""
    start_at = time.monotonic() + SPAWN_S
    stop_at = start_at + seconds
    per_process = CLIENTS // PROCESSES
    jobs = [([addrs[(p + i) % len(addrs)] for i in range(len(addrs))], path, body, per_process,
             start_at, stop_at) for p in range(PROCESSES)]
    window: list[dict[str, float]] = []

    def sample_cpu() -> None:  # the servers' CPU time at the start and end of the window
        for at in (start_at, stop_at):
            time.sleep(max(0.0, at - time.monotonic()))
            window.append({name: sum(cpu_seconds(pid) for pid in group)
                           for name, group in pids.items()})

    sampler = threading.Thread(target=sample_cpu)
    sampler.start()
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.map(process_main, jobs)
    sampler.join()
    total = merge(results)
    ok = sum(n for status, n in total.items() if 200 <= status < 300)
    others = ", ".join(f"{n} x {s}" for s, n in sorted(total.items()) if not 200 <= s < 300)
    split_us = {name: (window[1][name] - window[0][name]) / max(1, ok) * 1e6 for name in pids}
    return Result(ok / seconds, others or "no other answers", sum(split_us.values()), split_us)


def node_figures(addr: str) -> dict[str, float]:
    """Unlabelled samples of one node's /metrics (API and Raft process figures)."""
    from prometheus_client.parser import text_string_to_metric_families

    _, _, text = Http(addr).call("GET", "/metrics")
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if not sample.labels}


def raft_notes(before: dict[str, float], after: dict[str, float], answers: float) -> str:
    """Tasks per enqueue command, and the leader's log entries and fsyncs per answer."""
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    commands = delta("dqueue_enqueue_command_tasks_count")
    per_command = delta("dqueue_enqueue_command_tasks_sum") / max(1.0, commands)
    entries = delta("dqueue_raft_entries_persisted_total")
    fsyncs = delta("dqueue_raft_fsync_total")
    return (f"{per_command:.1f} tasks per Raft command; per answer: "
            f"{commands / max(1.0, answers):.2f} commands, {entries / max(1.0, answers):.2f} "
            f"leader log entries, {fsyncs / max(1.0, answers):.2f} leader fsyncs")


def report(name: str, result: Result, noop_rate: float, extra: str = "") -> None:
    """Print one single-task line: rate, share of the no-op rate, CPU per request."""
    notes = "; ".join(x for x in (f"{result.cpu_us:.0f} us server CPU per request", extra,
                                  result.others) if x)
    print(f"{name:38} {result.rate:8.0f} req/s  {result.rate / noop_rate:4.2f} of no-op  "
          f"({notes})")
    print_split(result, 1)


def print_split(result: Result, per: int) -> None:
    """Print the CPU per answer (divided by ``per``) of each group of processes, if several."""
    if len(result.split_us) > 1:
        parts = ", ".join(f"{name} {us / per:.0f}" for name, us in result.split_us.items())
        print(f"{'':38}   us CPU by process: {parts}")


def cluster_pids(nodes: NodeCluster, leader: str) -> dict[str, list[int]]:
    """The cluster's processes grouped by role: each API and Raft process, the supervisors."""
    groups: dict[str, list[int]] = {"supervisors": []}
    for node_id in nodes.ids:
        role = "leader" if node_id == leader else node_id
        supervisor = nodes.procs[node_id].pid
        groups["supervisors"].append(supervisor)
        for pid in nodes.child_pids(node_id):
            kind = "api" if pid == nodes.api_pid(node_id) else "raft"
            groups[f"{role} {kind}"] = [pid]
    return dict(sorted(groups.items(), key=lambda kv: (not kv[0].startswith("leader"), kv[0])))


PHASES = ("noop", "stub", "leader", "spread", "batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=32, help="waitress threads (api)")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)} (no-op always runs)")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    one_task = json.dumps({"type": "bench", "payload": {"to": "user@example.com"}}).encode()
    batch = json.dumps({"tasks": [{"type": "bench-batch", "payload": {"n": i}}
                                  for i in range(100)]}).encode()

    with tempfile.TemporaryDirectory(prefix="dq-bench-http-") as tmp:
        noop_port = free_port()
        noop_server = subprocess.Popen([sys.executable, "-c", NOOP_SERVER, str(noop_port),
                                        str(args.threads)])
        stub_port = free_port()
        stub_server = subprocess.Popen([sys.executable, "-c", STUB_API_SERVER, str(stub_port),
                                        str(args.threads)], cwd=ROOT)
        nodes = NodeCluster(Path(tmp), 3, api={"http_threads": args.threads}, log_format="json",
                            start=True)
        try:
            noop_addr = f"127.0.0.1:{noop_port}"
            wait_http(lambda: Http(noop_addr).call("POST", "/tasks", {})[0] == 201, "no-op up")
            leader = nodes.leader()
            addrs = [nodes.http_addr[n] for n in nodes.ids]
            print(f"machine: {multiprocessing.cpu_count()} cores; {CLIENTS} keep-alive clients "
                  f"in {PROCESSES} processes; {args.seconds:.0f} s per run; "
                  f"waitress threads {args.threads}")
            noop = load([noop_addr], "/tasks", one_task, args.seconds,
                        {"noop": [noop_server.pid]})
            report("no-op Falcon endpoint on waitress", noop, noop.rate)
            if "stub" in phases:
                stub_addr = f"127.0.0.1:{stub_port}"
                wait_http(lambda: Http(stub_addr).call("POST", "/tasks", {"type": "a"})[0] == 201,
                         "stub API up")
                stub = load([stub_addr], "/tasks", one_task, args.seconds,
                            {"stub": [stub_server.pid]})
                report("POST /tasks, real app, stub Raft", stub, noop.rate)
            stub_server.terminate()
            pids = cluster_pids(nodes, leader)
            if "leader" in phases:
                before = node_figures(nodes.http_addr[leader])
                lead = load([nodes.http_addr[leader]], "/tasks", one_task, args.seconds, pids)
                notes = raft_notes(before, node_figures(nodes.http_addr[leader]),
                                   lead.rate * args.seconds)
                report("POST /tasks, 3-node cluster, leader", lead, noop.rate, notes)
            if "spread" in phases:
                spread = load(addrs, "/tasks", one_task, args.seconds, pids)
                report("POST /tasks, 3-node cluster, spread", spread, noop.rate)
            if "batch" in phases:
                before = node_figures(nodes.http_addr[leader])
                batches = load([nodes.http_addr[leader]], "/tasks/batch", batch, args.seconds, pids)
                notes = raft_notes(before, node_figures(nodes.http_addr[leader]),
                                   batches.rate * args.seconds)
                print(f"{'POST /tasks/batch x100, leader':38} {batches.rate * 100:8.0f} tasks/s  "
                      f"({batches.rate:.0f} req/s; {batches.cpu_us / 100:.0f} us CPU per task; "
                      f"{notes}; {batches.others})")
                print_split(batches, 100)
        finally:
            nodes.close()
            for server in (noop_server, stub_server):
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    main()
