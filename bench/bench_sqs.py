"""Benchmark of the SQS API with boto3 against a 3-node cluster: SendMessage, SendMessageBatch
and ReceiveMessage + DeleteMessage(Batch) rates.

Starts a fresh 3-node cluster on 127.0.0.1 (each node's supervisor, Raft and API processes),
creates one queue through SQS on the leader, then runs four phases of ``--seconds`` each with
``--clients`` threads, each with its own boto3 client and its own HTTP connection to the leader:

1. ``SendMessage`` of one 100-byte body per call;
2. ``SendMessageBatch`` of 10 bodies per call;
3. ``ReceiveMessage`` (up to 10, no wait) then one ``DeleteMessage`` per message;
4. ``ReceiveMessage`` (up to 10, no wait) then one ``DeleteMessageBatch`` of them.

Prints one JSON object with the calls and messages per second of each phase and the p50/p99
latency of a call (never asserts). The whole run stays under about 30 s with the defaults.

Run from the repository root: ``.venv/bin/python bench/bench_sqs.py [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dqueue.testing.cluster import NodeCluster

BODY = "x" * 100


def sqs_client(url: str) -> Any:
    """A boto3 SQS client of ``url`` (protected mode: loopback, any credentials)."""
    return boto3.client("sqs", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIDBENCHMARK0001", aws_secret_access_key="bench",
                        config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                      max_pool_connections=4))


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (0 when empty), in ms."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def run_phase(url: str, clients: int, seconds: float,
              step: Callable[[Any], int]) -> dict[str, Any]:
    """Run ``step(client)`` (returns messages handled) in ``clients`` threads for ``seconds``."""
    latencies: list[float] = []
    counts = [0] * clients
    calls = [0] * clients
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(index: int) -> None:
        client = sqs_client(url)
        mine: list[float] = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            counts[index] += step(client)
            mine.append(time.perf_counter() - started)
            calls[index] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"calls_per_s": round(sum(calls) / elapsed, 1),
            "messages_per_s": round(sum(counts) / elapsed, 1),
            "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99)}


def main() -> None:
    """Run the benchmark and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=8, help="client threads per phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sqs-") as root:
        cluster = NodeCluster(Path(root), 3, start=True)
        try:
            url = cluster.url(cluster.leader())
            queue = sqs_client(url).create_queue(QueueName="bench")["QueueUrl"]

            def send(client: Any) -> int:
                client.send_message(QueueUrl=queue, MessageBody=BODY)
                return 1

            def send_batch(client: Any) -> int:
                client.send_message_batch(QueueUrl=queue, Entries=[
                    {"Id": str(i), "MessageBody": BODY} for i in range(10)])
                return 10

            def receive_delete(client: Any) -> int:
                messages = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=0).get("Messages", [])
                for message in messages:
                    client.delete_message(QueueUrl=queue,
                                          ReceiptHandle=message["ReceiptHandle"])
                return len(messages)

            def receive_delete_batch(client: Any) -> int:
                messages = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=0).get("Messages", [])
                if messages:
                    client.delete_message_batch(QueueUrl=queue, Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)])
                return len(messages)

            figures = {
                "send_message": run_phase(url, args.clients, args.seconds, send),
                "send_message_batch": run_phase(url, args.clients, args.seconds, send_batch),
                "receive_delete": run_phase(url, args.clients, args.seconds, receive_delete),
                "receive_delete_batch": run_phase(url, args.clients, args.seconds,
                                                  receive_delete_batch),
            }
            print(json.dumps({"clients": args.clients, "seconds": args.seconds, **figures},
                             indent=2))
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
