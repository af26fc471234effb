"""ZmqProducer against a real 3-node cluster: coalesced enqueues, and a leader killed mid-run
losing no acknowledged task and storing none twice."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from dqueue.client import Client, DQueueError, ZmqProducer
from dqueue.client.http_client import RetryPolicy
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration

PRODUCERS = 4


def stored_payloads(client: Client, task_type: str) -> list[tuple[str, Any]]:
    """(id, payload) of every pending task of ``task_type``, following cursors."""
    out: list[tuple[str, Any]] = []
    cursor = None
    while True:
        page = client.list_tasks("pending", type=task_type, limit=1000, cursor=cursor)
        out += [(task.id, task.payload) for task in page.tasks]
        cursor = page.next_cursor
        if not cursor:
            return out


def test_leader_kill_loses_no_acked_enqueue_and_stores_none_twice(tmp_path):
    cluster = NodeCluster(tmp_path, 3, start=True)
    try:
        leader = cluster.leader()
        # The leader's gateway first: its death makes the producer move to another node.
        order = [leader, *(n for n in cluster.ids if n != leader)]
        acked: dict[str, str] = {}  # payload -> task id, of every enqueue that returned
        errors: list[DQueueError] = []
        stop = threading.Event()
        lock = threading.Lock()
        with ZmqProducer([cluster.zmq(n) for n in order], linger_ms=2, timeout_s=2.0,
                         retry=RetryPolicy(deadline_s=30.0)) as producer:
            def produce(index: int) -> None:
                n = 0
                while not stop.is_set():
                    key = f"p{index}-{n}"
                    n += 1
                    try:
                        task = producer.enqueue("kill", key)
                    except DQueueError as exc:
                        errors.append(exc)
                        continue
                    with lock:
                        acked[key] = task.id

            threads = [threading.Thread(target=produce, args=(i,), daemon=True)
                       for i in range(PRODUCERS)]
            for thread in threads:
                thread.start()
            wait_for(lambda: len(acked) >= 200, 30, "enqueues before the kill")
            cluster.kill(leader)
            before_kill = len(acked)
            wait_for(lambda: len(acked) >= before_kill + 200, 60, "enqueues after the kill")
            stop.set()
            for thread in threads:
                thread.join(60)
            sent = producer.messages_sent
        assert errors == []
        # Several callers' tasks shared messages.
        assert sent < len(acked)
        survivors = [n for n in cluster.ids if n != leader]
        cluster.leader(among=survivors)
        with Client([cluster.url(n) for n in survivors]) as client:
            stored = stored_payloads(client, "kill")
        copies = Counter(payload for _, payload in stored)
        assert [p for p, count in copies.items() if count > 1] == []
        ids = dict((payload, task_id) for task_id, payload in stored)
        missing = [key for key in acked if key not in ids]
        assert missing == []
        assert all(ids[key] == task_id for key, task_id in acked.items())
    finally:
        cluster.close()
