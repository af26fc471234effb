"""Workers listed by their heartbeats on a real node, and dropped after missed heartbeats.

One node (supervisor, Raft and API processes, real LMDB, loopback); one dqueue-worker over HTTP
and one over ZeroMQ. The ZeroMQ one heartbeats every 500 ms and, SIGKILLed, leaves
``GET /workers`` once three intervals pass without a heartbeat; the HTTP one heartbeats every
20 s, so when it leaves the list right after a SIGTERM it is its last heartbeat (``leaving``)
that dropped it, not an expiry.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.client import Client
from dqueue.queue.fields import MISSED_HEARTBEATS
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration

HEARTBEAT_S = 0.5
HTTP_HEARTBEAT_S = 20.0
# A loaded 2-core machine may take a while to apply the entry that passes the expiry.
SLACK_S = 5.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    nodes = NodeCluster(tmp_path, 1)
    nodes.start()
    nodes.leader()
    try:
        yield nodes
    finally:
        nodes.close()


def _listed(client: Client) -> dict[str, dict[str, Any]]:
    return {item["worker_id"]: item for item in client.workers()}


def test_workers_listed_and_dropped_after_missed_heartbeats(cluster: NodeCluster) -> None:
    client = Client(cluster.urls())
    http = cluster.spawn_worker("--server", cluster.url("n1"), "--worker-id", "hb-http",
                                "--concurrency", "2", "--heartbeat", "20s", "--wait", "1s",
                                log_name="hb-http")
    zmq = cluster.spawn_worker("--zmq", cluster.zmq("n1"), "--worker-id", "hb-zmq",
                               "--concurrency", "3", "--queues", "default", "--heartbeat",
                               f"{int(HEARTBEAT_S * 1000)}ms", "--wait", "1s",
                               log_name="hb-zmq")
    wait_for(lambda: {"hb-http", "hb-zmq"} <= set(_listed(client)), 60,
             "both workers listed")
    listed = _listed(client)
    for worker_id, proc, transport, concurrency, interval_s in (
            ("hb-http", http, "http", 2, HTTP_HEARTBEAT_S), ("hb-zmq", zmq, "zmq", 3,
                                                            HEARTBEAT_S)):
        item = listed[worker_id]
        assert item["transport"] == transport and item["pid"] == proc.pid
        assert item["host"] == socket.gethostname()[:253]
        assert item["concurrency"] == concurrency and item["queues"] == ["default"]
        assert item["types"]  # the demo app's types, all of them
        assert item["in_flight"] == 0 and item["heartbeat_seconds"] == interval_s
        for key in ("started_at", "first_seen_at", "last_heartbeat_at", "expires_at"):
            assert isinstance(item[key], str), key
    # Heartbeats keep coming: the count grows.
    seen = listed["hb-zmq"]["heartbeats"]
    wait_for(lambda: _listed(client).get("hb-zmq", {}).get("heartbeats", 0) > seen + 1, 30,
             "more heartbeats")

    os.killpg(zmq.pid, signal.SIGKILL)
    zmq.wait(10)
    killed_at = time.monotonic()
    wait_for(lambda: "hb-zmq" not in _listed(client),
             MISSED_HEARTBEATS * HEARTBEAT_S + SLACK_S, "the killed worker dropped")
    gone_after_s = time.monotonic() - killed_at
    assert gone_after_s <= MISSED_HEARTBEATS * HEARTBEAT_S + SLACK_S
    assert "hb-http" in _listed(client)  # the live one stays

    stopped_at = time.monotonic()
    http.send_signal(signal.SIGTERM)
    assert http.wait(30) == 0
    # Its leaving heartbeat dropped it, long before its expiry could have.
    assert "hb-http" not in _listed(client)
    assert time.monotonic() - stopped_at < MISSED_HEARTBEATS * HTTP_HEARTBEAT_S / 2
    client.close()


def test_every_node_lists_the_same_workers_and_a_new_leader_keeps_them(
        tmp_path: Path) -> None:
    nodes = NodeCluster(tmp_path, 3)
    nodes.start()
    try:
        leader = nodes.leader()
        follower = next(node_id for node_id in ("n1", "n2", "n3") if node_id != leader)
        with Client(nodes.url(follower), worker_id="by-hand") as writer:
            writer.heartbeat(host="box", concurrency=1, heartbeat_seconds=300)
        for node_id in ("n1", "n2", "n3"):
            with Client(nodes.url(node_id)) as reader:
                wait_for(lambda reader=reader: "by-hand" in _listed(reader), 30,
                         f"listed on {node_id}")
        nodes.kill(leader)
        survivors = [node_id for node_id in ("n1", "n2", "n3") if node_id != leader]
        new_leader = nodes.leader(among=survivors)
        with Client(nodes.url(new_leader)) as reader:
            assert "by-hand" in _listed(reader)  # replicated state: not the old leader's
    finally:
        nodes.close()
