"""Threads of one process enqueueing through one ZmqProducer: what ``linger_ms`` buys.

Starts a 3-node cluster (real processes, loopback), then for each ``linger_ms`` runs
``--threads`` threads that each enqueue one task at a time through one shared ``ZmqProducer``
(every call waits for its commit), and prints tasks/s, p50/p99 latency and tasks per message.
The HTTP ``Client`` shared the same way is the baseline. A benchmark: it prints, never fails.

    .venv/bin/python bench/bench_producer.py [--threads 16] [--seconds 5] [--linger 0,1,2,5]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from dqueue.client import Client, ZmqProducer
from dqueue.testing.cluster import NodeCluster


def drive(enqueue: Any, threads: int, seconds: float) -> tuple[int, list[float]]:
    """Run ``threads`` loops of ``enqueue(i)`` for ``seconds``; (count, sorted latencies)."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    end = time.perf_counter() + seconds

    def loop(index: int) -> None:
        mine = latencies[index]
        while (start := time.perf_counter()) < end:
            enqueue(index)
            mine.append(time.perf_counter() - start)

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    flat = sorted(x for mine in latencies for x in mine)
    return len(flat), flat


def report(label: str, count: int, flat: list[float], seconds: float, extra: str = "") -> None:
    """One line of figures."""
    if not flat:
        print(f"{label}: nothing done")
        return
    p50 = flat[len(flat) // 2] * 1000
    p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000
    print(f"{label}: {count / seconds:,.0f} tasks/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms{extra}",
          flush=True)


def main() -> int:
    """Parse the options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--linger", default="0,1,2,5", help="linger_ms values, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-producer-") as root:
        cluster = NodeCluster(Path(root), 3, start=True)
        try:
            leader = cluster.leader(deadline_s=30.0)
            with Client(cluster.url(leader)) as client:
                count, flat = drive(lambda i: client.enqueue("http", i), args.threads,
                                    args.seconds)
                report(f"HTTP Client, {args.threads} threads", count, flat, args.seconds)
            for linger_ms in (float(x) for x in args.linger.split(",")):
                with ZmqProducer(cluster.zmq(leader), linger_ms=linger_ms) as producer:
                    count, flat = drive(lambda i, p=producer: p.enqueue("zmq", i), args.threads,
                                        args.seconds)
                    per_message = count / max(1, producer.messages_sent)
                report(f"ZmqProducer linger_ms={linger_ms:g}, {args.threads} threads", count,
                       flat, args.seconds, f", {per_message:.1f} tasks per message")
        finally:
            cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
