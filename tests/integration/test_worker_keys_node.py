"""Authenticated workers on a real node's gateway: CURVE keys from ``dqueue-cli keys init``.

One node with a secure folder (its key pair, ``members/``, ``workers/w1.key``); a real
``dqueue-worker`` with the worker's folder drains tasks, and a key the node does not list, a
member's key, no key at all, or a wrong server key are refused with a message that says what
to fix, well within 2 s of connecting.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue.client import Client, Unauthorized
from dqueue.client.worker_keys import WorkerKeys
from dqueue.client.zmq_client import ZmqWorkerClient
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster
from tests.integration.keyed_node import keyed_node, keys_init

pytestmark = pytest.mark.integration

REFUSAL_DEADLINE_S = 2.0


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeCluster, Path]]:
    root = tmp_path_factory.mktemp("wkeys")
    keys_init(root / "other", "--members", "n1", "--workers", "w1")  # keys the node never saw
    with keyed_node(root, "w1") as cluster:
        yield cluster, root


def test_the_gateway_logs_its_mode(node):
    cluster, _ = node
    wait_for(lambda: 'port_mode port="worker"' in cluster.log_text("n1"), 10, "port_mode")
    text = cluster.log_text("n1")
    assert f'port="worker" addr="tcp://{cluster.worker_addr["n1"]}" mode="authenticated"' in text
    assert 'port="http"' in text and 'mode="protected"' in text  # no tokens file


def refused_within_deadline(cluster: NodeCluster, keys: WorkerKeys | None) -> Unauthorized:
    client = ZmqWorkerClient(cluster.zmq("n1"), keys=keys, timeout_s=10, retry_deadline_s=1)
    started = time.monotonic()
    try:
        with pytest.raises(Unauthorized) as info:
            client.ping()
    finally:
        client.close()
    assert time.monotonic() - started < REFUSAL_DEADLINE_S
    return info.value


def test_good_keys_are_admitted_and_bad_ones_refused_saying_why(node):
    cluster, root = node
    good = WorkerKeys.from_secure_dir(str(root / "keys" / "w1"))
    with ZmqWorkerClient(cluster.zmq("n1"), keys=good, timeout_s=10) as client:
        assert client.ping() < REFUSAL_DEADLINE_S
    server_key = str(root / "keys" / "w1" / "members" / "n1.key")
    unknown = WorkerKeys.from_files(str(root / "other" / "w1" / "w1.key_secret"), server_key)
    assert "refused this worker's key" in str(refused_within_deadline(cluster, unknown))
    member = WorkerKeys.from_files(str(root / "keys" / "n1" / "n1.key_secret"), server_key)
    assert "refused this worker's key" in str(refused_within_deadline(cluster, member))
    no_keys = str(refused_within_deadline(cluster, None))
    assert "--curve-key" in no_keys and "--secure-dir" in no_keys
    wrong_server = WorkerKeys.from_files(str(root / "keys" / "w1" / "w1.key_secret"),
                                         str(root / "other" / "n1" / "members" / "n1.key"))
    assert "server key" in str(refused_within_deadline(cluster, wrong_server))
    metrics = urllib.request.urlopen(cluster.url("n1") + "/metrics", timeout=10).read().decode()
    for outcome in ("admitted", "unknown_key", "member_key"):  # NULL fails before ZAP
        assert f'dqueue_gateway_handshakes_total{{outcome="{outcome}"}}' in metrics, outcome


def test_a_real_worker_with_its_keys_drains_and_one_with_a_bad_key_exits_saying_why(node):
    cluster, root = node
    with Client(cluster.url("n1")) as producer:  # loopback: HTTP is in protected mode
        ids = [t.id for t in producer.enqueue_many([{"type": "noop"}] * 20)]
        worker = cluster.spawn_worker("--zmq", cluster.zmq("n1"), "--secure-dir",
                                      str(root / "keys" / "w1"), "--types", "noop",
                                      log_name="worker-keys")
        wait_for(lambda: all(producer.get(i).status.value == "completed" for i in ids), 30,
                 "the keyed worker to complete every task")
    worker.terminate()
    assert worker.wait(30) == 0
    refused = cluster.spawn_worker(
        "--zmq", cluster.zmq("n1"), "--curve-key", str(root / "other" / "w1" / "w1.key_secret"),
        "--server-key", str(root / "keys" / "w1" / "members" / "n1.key"), "--types", "noop",
        log_name="worker-bad-key")
    assert refused.wait(30) == 1
    assert "refused this worker's key" in cluster.log_text("worker-bad-key")
