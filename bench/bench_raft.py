"""Benchmark of the Raft process: a 3-node cluster on this machine, driven over IPC directly.

Prints (never asserts):
- committed enqueue commands/s with 1 client and with many concurrent clients;
- p50/p99 commit latency at a fixed offered rate (default 1,000 commands/s, and a fifth of it),
  with the leader's own view (its ``command_ms`` and ``persist_ms`` histograms), the cluster's
  CPU per command, and this driver's CPU and send delay (to tell its lateness from the
  cluster's);
- failover over N kills of the leader, with a write through a follower in flight: the leader
  is stopped (SIGSTOP) while the follower's forward of the write waits unread in its socket,
  then killed (kill -9); printed per kill and as min/median/max: the time from the stop to the
  new leader's election (seen by polling health) and to the write's answer, and the answer's
  delay after the election (the follower re-sends the forward to the new leader: client
  sessions, docs/raft-process.md). ``--failover-only`` runs only this phase.

Run from the repository root: ``.venv/bin/python bench/bench_raft.py [--quick]``.
The concurrent clients are DEALER sockets driven by one poller (each with one request in
flight), so the client side costs little CPU next to the three Raft processes.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dqueue.protocol import wire
from dqueue.protocol.ipc_client import RaftClientError
from dqueue.testing.raftproc import (
    RaftCluster,
    converge,
    enqueue_cmd,
    wait_raft,
)

# Longest sleep of the open-loop driver between polls when its next send is under 1 ms away.
OPEN_LOOP_NAP_S = 0.0001


class Driver:
    """Many IPC clients on one thread: each DEALER keeps at most one request in flight."""

    def __init__(self, endpoint: str, clients: int) -> None:
        self.ctx = zmq.Context.instance()
        self.socks = []
        for _ in range(clients):
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            self.socks.append(sock)
        self.poller = zmq.Poller()
        for sock in self.socks:
            self.poller.register(sock, zmq.POLLIN)
        self.seq = 0
        self.prefix = os.urandom(4).hex()

    def send(self, sock: zmq.Socket, tasks_per_command: int = 1) -> float:
        self.seq += 1
        rid = f"{self.prefix}-{self.seq}"
        cmd = {"op": "enqueue", "tasks": [{"id": f"b{rid}-{i}", "type": "t", "payload": None}
                                          for i in range(tasks_per_command)]}
        body = {"rid": rid, "cmd": cmd, "timeout_ms": 5_000, "wait_ms": 0}
        sock.send_multipart(wire.encode(b"cmd", body))
        return time.perf_counter()

    def closed_loop(self, seconds: float,
                    tasks_per_command: int = 1) -> tuple[int, int, list[float]]:
        """Every client sends, waits for its answer, sends again; returns (ok, err, latencies)."""
        started = {sock: self.send(sock, tasks_per_command) for sock in self.socks}
        ok = err = 0
        latencies: list[float] = []
        end = time.perf_counter() + seconds
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            for sock, _ in self.poller.poll(int((end - now) * 1000) + 1):
                kind, _body = wire.decode(sock.recv_multipart())
                done = time.perf_counter()
                latencies.append(done - started[sock])
                if kind == b"res":
                    ok += 1
                else:
                    err += 1
                if done < end:
                    started[sock] = self.send(sock, tasks_per_command)
        self._drain(seconds=5.0)
        return ok, err, latencies

    def open_loop(self, rate: float, seconds: float) -> tuple[int, int, list[float], list[float]]:
        """Send at a fixed rate, round robin over the clients.

        Returns (ok, err, latencies, send delays): each latency is measured from the scheduled
        send time, so that a late send counts against the cluster; the send delays (actual
        minus scheduled send time) show how much of that is this driver's own doing.

        ``zmq.Poller`` waits in whole milliseconds: when the next send is less than a
        millisecond away the driver polls without waiting and sleeps at most
        ``OPEN_LOOP_NAP_S`` between polls, so that it neither spins (at 1,000/s a zero-timeout
        poll loop took a whole core from the cluster it measures) nor sends up to a
        millisecond late; an answer is stamped at most one nap late.
        """
        in_flight: dict[str, float] = {}
        ok = err = 0
        latencies: list[float] = []
        send_delays: list[float] = []
        start = time.perf_counter()
        n_sent = 0
        total = int(rate * seconds)
        poll, perf = self.poller.poll, time.perf_counter
        while n_sent < total or in_flight:
            now = perf()
            while n_sent < total and start + n_sent / rate <= now:
                sock = self.socks[n_sent % len(self.socks)]
                self.seq += 1
                rid = f"{self.prefix}-{self.seq}"
                body = {"rid": rid, "cmd": enqueue_cmd(f"o{rid}"), "timeout_ms": 5_000,
                        "wait_ms": 0}
                scheduled = start + n_sent / rate
                sock.send_multipart(wire.encode(b"cmd", body))
                in_flight[rid] = scheduled  # latency from the scheduled send
                send_delays.append(perf() - scheduled)
                n_sent += 1
            if now > start + seconds + 10:
                break
            wait_s = (start + n_sent / rate if n_sent < total else now + 0.05) - perf()
            events = poll(int(wait_s * 1000) if wait_s >= 0.001 else 0)
            if not events:
                if wait_s > 0:
                    time.sleep(min(wait_s, OPEN_LOOP_NAP_S))
                continue
            for sock, _ in events:
                kind, body = wire.decode(sock.recv_multipart())
                sent = in_flight.pop(body.get("rid"), None)
                if sent is None:
                    continue
                latencies.append(perf() - sent)
                ok += kind == b"res"
                err += kind != b"res"
        return ok, err, latencies, send_delays

    def _drain(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        pending = len(self.socks)
        while pending and time.perf_counter() < end:
            for sock, _ in self.poller.poll(100):
                sock.recv_multipart()
                pending -= 1

    def close(self) -> None:
        for sock in self.socks:
            sock.close(0)


def cluster_cpu_s(cluster: RaftCluster) -> float:
    """CPU seconds (user + system) used so far by the running Raft processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in cluster.procs.values():
        with open(f"/proc/{proc.pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def histograms(cluster: RaftCluster, node_id: str) -> dict[str, list[list[Any]]]:
    """The member's ``command_ms`` and ``persist_ms`` histograms (cumulative buckets; [] for a
    histogram it does not have)."""
    metrics = cluster.client(node_id).read({"op": "metrics"})
    return {name: metrics[name]["buckets"] if isinstance(metrics.get(name), dict) else []
            for name in ("command_ms", "persist_ms")}


def bucket_pct(before: list[list[Any]], after: list[list[Any]], p: float) -> str:
    """The upper bound of the bucket holding the p-th percentile of what was counted between
    two readings of a cumulative histogram ("?" when nothing was)."""
    if not after:
        return "?"
    counts = [a[1] - (before[i][1] if before else 0) for i, a in enumerate(after)]
    if not counts[-1]:
        return "?"
    rank = counts[-1] * p / 100
    return next(f"{a[0]}" for a, n in zip(after, counts, strict=True) if n >= rank)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) of values, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000


def failover_via_follower(cluster: RaftCluster, leader: str) -> dict[str, float]:
    """Stop the leader with a write forwarded to it by a follower, then kill -9 it.

    Returns the seconds from the stop to the new leader's election (as polled) and to the
    write's answer, the term of the new leader, and the answer's error code ("" when ok).
    """
    survivors = [n for n in cluster.ids if n != leader]
    follower = survivors[0]
    old_term = cluster.health(leader)["term"]
    got: dict[str, Any] = {}

    def write() -> None:
        client = cluster.new_client(follower)
        try:
            got["outcome"] = client.command(enqueue_cmd(f"fo{time.perf_counter_ns()}"),
                                            timeout_ms=10_000)
        except RaftClientError as exc:
            got["error"] = exc
        got["at"] = time.perf_counter()
        client.close()

    stopped_at = time.perf_counter()
    cluster.signal(leader, signal.SIGSTOP)  # from here on the cluster sees no leader
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    wait_raft(lambda: cluster.client(follower).read({"op": "metrics"})["requests_pending"] >= 1,
              10.0, "the write to reach the follower", interval_s=0.002)
    cluster.kill(leader)

    def new_leader() -> int | None:
        for node in survivors:
            health = cluster.health(node, timeout_ms=200)
            if health["role"] == "leader" and health["term"] > old_term:
                return int(health["term"])
        return None

    term = wait_raft(new_leader, 30.0, "a new leader", interval_s=0.005)
    elected_s = time.perf_counter() - stopped_at
    writer.join(30)
    error = ("" if got.get("outcome", {}).get("ok") else
             type(got["error"]).__name__ if "error" in got else str(got.get("outcome")))
    return {"elected_s": elected_s, "answer_s": got["at"] - stopped_at, "term": term,
            "error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput phase")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument("--rate", type=float, default=1_000.0, help="offered rate, commands/s")
    parser.add_argument("--kills", type=int, default=10, help="failovers to measure")
    parser.add_argument("--quick", action="store_true", help="short phases, 3 kills")
    parser.add_argument("--no-failover", action="store_true", help="skip the kills")
    parser.add_argument("--failover-only", action="store_true", help="only the kills")
    parser.add_argument("--secure", action="store_true",
                        help="CurveZMQ between the members (keys as dqueue-cli keys init makes)")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="run the members under cProfile, run only the many-clients phase, "
                             "stop the members cleanly and print where the leader and a "
                             "follower spend their CPU (DIR keeps the .prof files)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.kills = 3.0, 3
    if args.no_failover:
        args.kills = 0
    with tempfile.TemporaryDirectory(prefix="dq-bench-") as root:
        cluster = RaftCluster(Path(root), 3, secure=args.secure)
        try:
            if args.profile is not None:
                profile(cluster, args)
            else:
                run(cluster, args)
        finally:
            cluster.close()


def profile(cluster: RaftCluster, args: Any) -> None:
    """The many-clients phase under cProfile; prints the top functions of two members."""
    import pstats

    args.profile.mkdir(parents=True, exist_ok=True)
    cluster.profile_dir = args.profile
    cluster.start()
    leader = cluster.leader()
    print(f"cluster up, leader {leader}; load={os.getloadavg()[0]:.2f}")
    many = Driver(cluster.configs[leader].ipc_endpoint(), args.clients)
    ok, err, lat = many.closed_loop(args.seconds)
    many.close()
    print(f"{args.clients} clients (profiled): {ok} commits, {err} errors, "
          f"p50 {pct(lat, 50):.2f} ms")
    follower = next(n for n in cluster.ids if n != leader)
    for node_id in cluster.ids:
        cluster.stop(node_id, timeout_s=60)
    for role, node_id in (("leader", leader), ("follower", follower)):
        path = args.profile / f"{node_id}.prof"
        stats = pstats.Stats(str(path))
        print(f"--- {role} {node_id}: {stats.total_tt:.2f} s profiled, "
              f"{stats.total_tt / max(ok, 1) * 1e6:.0f} us per commit")
        stats.sort_stats("tottime").print_stats(25)


def run(cluster: RaftCluster, args: Any) -> None:
    cluster.start()
    leader = cluster.leader()
    endpoint = cluster.configs[leader].ipc_endpoint()
    print(f"cluster up, leader {leader}; cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}")
    if args.failover_only:
        failovers(cluster, args.kills)
        return
    term_before = cluster.health(leader)["term"]

    one = Driver(endpoint, 1)
    ok, err, lat = one.closed_loop(args.seconds)
    one.close()
    print(f"1 client:   {ok / args.seconds:8.0f} commits/s  p50 {pct(lat, 50):6.2f} ms  "
          f"p99 {pct(lat, 99):6.2f} ms  errors {err}")

    many = Driver(endpoint, args.clients)
    cpu_before = cluster_cpu_s(cluster)
    ok, err, lat = many.closed_loop(args.seconds)
    cpu_used = cluster_cpu_s(cluster) - cpu_before
    many.close()
    print(f"{args.clients} clients: {ok / args.seconds:8.0f} commits/s  p50 {pct(lat, 50):6.2f} ms"
          f"  p99 {pct(lat, 99):6.2f} ms  errors {err}")
    if ok:
        per_cmd_ms = cpu_used / ok * 1000
        print(f"  CPU of the 3 Raft processes: {per_cmd_ms:.3f} ms per committed command "
              f"(ceiling on 2 idle cores: {2000 / per_cmd_ms:.0f} commands/s)")

    for rate in sorted({args.rate / 5, args.rate}):
        fixed = Driver(endpoint, 16)
        hist_before = histograms(cluster, leader)
        cpu_before, own_before = cluster_cpu_s(cluster), time.process_time()
        ok, err, lat, delays = fixed.open_loop(rate, args.seconds)
        cpu_used, own_used = cluster_cpu_s(cluster) - cpu_before, time.process_time() - own_before
        hist_after = histograms(cluster, leader)
        fixed.close()
        print(f"at {rate:.0f}/s:  {ok} ok, {err} errors  p50 {pct(lat, 50):6.2f} ms  "
              f"p99 {pct(lat, 99):6.2f} ms  max {pct(lat, 100):6.2f} ms")
        for name, what in (("command_ms", "intake to answer"), ("persist_ms", "write + fsync")):
            print(f"  leader's {name} ({what}): p50 <= "
                  f"{bucket_pct(hist_before[name], hist_after[name], 50)} ms, "
                  f"p99 <= {bucket_pct(hist_before[name], hist_after[name], 99)} ms")
        print(f"  CPU: Raft processes {cpu_used / max(ok, 1) * 1000:.3f} ms per command, "
              f"this driver {own_used / args.seconds * 100:.0f}% of a core; "
              f"driver's send delay p99 {pct(delays, 99):.2f} ms")

    term_after = cluster.health(cluster.leader())["term"]
    print(f"elections during the load phases: {term_after - term_before} "
          f"(term {term_before} -> {term_after}); load now {os.getloadavg()[0]:.2f}")
    batch = Driver(endpoint, 16)
    cpu_before = cluster_cpu_s(cluster)
    ok, err, lat = batch.closed_loop(args.seconds, tasks_per_command=100)
    cpu_used = cluster_cpu_s(cluster) - cpu_before
    batch.close()
    print(f"16 clients, 100 tasks per enqueue: {ok / args.seconds:6.0f} commits/s = "
          f"{ok * 100 / args.seconds:8.0f} tasks/s  p50 {pct(lat, 50):6.2f} ms  "
          f"p99 {pct(lat, 99):6.2f} ms  errors {err}")
    if ok:
        print(f"  CPU of the 3 Raft processes: {cpu_used / (ok * 100) * 1000:.3f} ms per task")

    failovers(cluster, args.kills)


def failovers(cluster: RaftCluster, kills: int) -> None:
    """``kills`` rounds of failover_via_follower, each followed by a restart of the old
    leader; prints every round and the spread."""
    rounds = []
    for i in range(kills):
        leader = cluster.leader()
        got = failover_via_follower(cluster, leader)
        rounds.append(got)
        print(f"failover {i + 1}: killed {leader}; new leader (term {got['term']}) after "
              f"{got['elected_s'] * 1000:.0f} ms, write through a follower "
              f"{'answered' if not got['error'] else 'FAILED (' + got['error'] + ')'} after "
              f"{got['answer_s'] * 1000:.0f} ms "
              f"({(got['answer_s'] - got['elected_s']) * 1000:.0f} ms after the election)",
              flush=True)
        cluster.start(leader)
        converge(cluster, cluster.ids, deadline_s=60)
    if not rounds:
        return
    for name, values in (
            ("election", [r["elected_s"] for r in rounds]),
            ("write through a follower answered", [r["answer_s"] for r in rounds]),
            ("answer after the election", [r["answer_s"] - r["elected_s"] for r in rounds])):
        print(f"failover over {len(rounds)} kills, {name}: min {min(values) * 1000:.0f} ms  "
              f"median {statistics.median(values) * 1000:.0f} ms  "
              f"max {max(values) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
