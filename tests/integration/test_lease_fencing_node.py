"""Lease fencing on a real node: a lease is held only by its unguessable token, and with
worker keys a worker acts only as the worker its key names (docs/security.md, "Lease fencing").

One node on 127.0.0.1 with a secure folder that lists the worker keys w1 and w2 (its HTTP port
has no tokens file, so loopback callers hold every role, the lease's holder and token shown to
them included: the worst case for a worker id that is public). Real HTTP, real ZeroMQ with
CURVE keys, the real Raft process and LMDB.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.client import Client, Forbidden, LeaseConflict
from dqueue.client.task import Lease, Task
from dqueue.client.worker_keys import WorkerKeys
from dqueue.client.zmq_client import ZmqWorkerClient
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster
from tests.integration.keyed_node import keyed_node

pytestmark = pytest.mark.integration

TOKEN = re.compile(r"[0-9a-f]{32}\.\d+")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeCluster, Path]]:
    root = tmp_path_factory.mktemp("fencing")
    with keyed_node(root, "w1,w2") as cluster:
        yield cluster, root


def post(cluster: NodeCluster, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return post_to(cluster, "n1", path, body)


def post_to(cluster: NodeCluster, node_id: str, path: str,
            body: dict[str, Any]) -> tuple[int, Any]:
    """One JSON POST to a member; returns (status, parsed body or None)."""
    host, _, port = cluster.http_addr[node_id].rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def keys_of(root: Path, worker: str) -> WorkerKeys:
    return WorkerKeys.from_secure_dir(str(root / "keys" / worker))


def test_tokens_are_nonces_of_the_leader_different_for_every_lease(node):
    cluster, _ = node
    with Client(cluster.url("n1")) as client:
        client.enqueue_many([{"type": "fence-tokens"}] * 4)
        first = client.lease_many(2, worker_id="victim", types=["fence-tokens"])
        second = client.lease_many(2, worker_id="victim", types=["fence-tokens"])
        tokens = [t.lease_token for t in first + second]
        assert all(token is not None and TOKEN.fullmatch(token) for token in tokens), tokens
        assert len(set(tokens)) == 4
        # One nonce per lease command, drawn afresh for each.
        assert len({token.split(".")[0] for token in tokens if token}) == 2
        for task in first + second:
            client.ack(task)


def test_over_http_a_stolen_worker_id_without_the_token_changes_nothing(node):
    cluster, _ = node
    with Client(cluster.url("n1")) as client:
        client.enqueue("fence-http")
        task = client.lease(worker_id="victim", types=["fence-http"])
        assert task is not None and task.lease is not None
        other = client.enqueue("fence-http")
        decoy = client.lease(worker_id="victim", types=["fence-http"])
        assert decoy is not None and decoy.id == other.id
        # The attacker reads the holder (GET shows it to this caller) and guesses tokens.
        seen = client.get(task.id)
        assert seen.lease is not None and seen.lease.worker_id == "victim"
        health = client.health()
        guesses: list[str | None] = [None, f"{health['commit_index']}.0", "1.0",
                                     decoy.lease_token, "0" * 32 + ".0"]
        for action, extra in (("ack", {}), ("nack", {"dead_letter": True}),
                              ("extend", {"lease_seconds": 3_600})):
            for guess in guesses:
                body: dict[str, Any] = {"worker_id": "victim", **extra}
                if guess is not None:
                    body["lease_token"] = guess
                status, answer = post(cluster, f"/tasks/{task.id}/{action}", body)
                assert status == 409, (action, guess, answer)
                assert answer["error"]["code"] == "lease_conflict"
        after = client.get(task.id)
        assert after.status.value == "leased" and after.attempts == 1
        assert after.lease is not None and after.lease.expires_at_ms == task.lease.expires_at_ms
        # The holder, with its token, still holds the lease.
        assert client.ack(task).status.value == "completed"
        assert client.ack(decoy).status.value == "completed"


def test_over_zeromq_the_key_names_the_worker_and_the_token_the_lease(node):
    cluster, root = node
    with Client(cluster.url("n1")) as producer:
        ids = [t.id for t in producer.enqueue_many([{"type": "fence-zmq"}] * 2)]
    w1_keys, w2_keys = keys_of(root, "w1"), keys_of(root, "w2")
    with ZmqWorkerClient(cluster.zmq("n1"), keys=w1_keys, timeout_s=10) as victim, \
            ZmqWorkerClient(cluster.zmq("n1"), keys=w1_keys, timeout_s=10) as same_key, \
            ZmqWorkerClient(cluster.zmq("n1"), keys=w2_keys, timeout_s=10) as other:
        assert victim.worker_id == "w1" and other.worker_id == "w2"
        tasks = victim.lease(2, types=["fence-zmq"], lease_seconds=600)
        assert sorted(t.id for t in tasks) == sorted(ids)
        task, second = tasks
        assert task.lease is not None and TOKEN.fullmatch(task.lease.token or "")
        # A second connection with w1's key, the right worker id, no or a wrong token.
        for guess in (None, "1.0", second.lease_token):
            body: dict[str, Any] = {"id": task.id, "worker_id": "w1"}
            if guess is not None:
                body["token"] = guess
            for kind in (b"ack", b"nack", b"extend"):
                with pytest.raises(LeaseConflict):
                    same_key._call(lambda kind=kind, body=body: same_key._send(kind, dict(body)))
        with pytest.raises(LeaseConflict) as whole:
            same_key._call(lambda: same_key._send(b"ack_many", {"worker_id": "w1", "items": [
                {"id": second.id, "token": second.lease_token}, {"id": task.id}]}))
        assert whole.value.field == "items[1].token"
        # w2's key claiming to be w1, even with w1's very token: refused as another worker.
        with pytest.raises(Forbidden) as forged:
            other._call(lambda: other._send(b"ack", {"id": task.id, "worker_id": "w1",
                                                     "token": task.lease_token}))
        assert forged.value.field == "worker_id" and "'w2'" in str(forged.value)
        with pytest.raises(Forbidden):
            other._call(lambda: other._send(b"ack_many", {"worker_id": "w1", "items": [
                {"id": task.id, "token": task.lease_token}]}))
        with pytest.raises(Forbidden):
            other._call(lambda: other._send(b"lease", {"worker_id": "w1",
                                                       "types": ["fence-zmq"]}))
        # As itself, w2 does not hold w1's lease.
        stolen = Task(id=task.id, type="fence-zmq", lease=Lease("w2", task.lease_token, 0))
        with pytest.raises(LeaseConflict):
            other.ack(stolen)
        with Client(cluster.url("n1")) as reader:
            assert all(reader.get(i).status.value == "leased" for i in ids)
        assert victim.ack(task).status.value == "completed"
        assert victim.ack_many([second]) == [None]  # answered once committed and applied
    with Client(cluster.url("n1")) as reader:
        assert all(reader.get(i).status.value == "completed" for i in ids)


def test_a_worker_given_another_workers_id_is_told_at_start(node):
    cluster, root = node
    worker = cluster.spawn_worker("--zmq", cluster.zmq("n1"), "--secure-dir",
                                  str(root / "keys" / "w1"), "--worker-id", "w2",
                                  log_name="worker-wrong-id")
    assert worker.wait(30) == 2
    assert "the worker id is the key's name, 'w1'" in cluster.log_text("worker-wrong-id")


def test_every_member_derives_the_same_tokens_so_they_hold_across_a_failover(tmp_path):
    # The nonce travels in the log entry: a follower that becomes leader checks the tokens the
    # old leader handed out. Leases of 60 s: nothing expires during the election.
    cluster = NodeCluster(tmp_path, 3, queue={"lease_timeout": "60s"}, start=True)
    try:
        old = cluster.leader()
        with Client(cluster.url(old)) as client:
            client.enqueue_many([{"type": "fence-failover"}] * 2)
            tasks = client.lease_many(2, worker_id="victim", types=["fence-failover"])
            assert len(tasks) == 2
        # Both followers applied the lease (a majority is enough for the answer): wait for
        # them, so the new leader surely has it.
        index = cluster.health(old)["commit_index"]  # type: ignore[index]
        rest = [n for n in cluster.ids if n != old]
        for n in rest:
            wait_for(lambda n=n: (cluster.health(n) or {}).get("applied_index", 0) >= index,
                     30, f"{n} applied the lease")
        cluster.kill(old)
        new = cluster.leader(among=rest)
        assert new != old
        status, answer = post_to(cluster, new, f"/tasks/{tasks[0].id}/ack",
                                 {"worker_id": "victim"})
        assert status == 409 and answer["error"]["code"] == "lease_conflict"
        with Client(cluster.url(new)) as client:
            assert [client.ack(t).status.value for t in tasks] == ["completed", "completed"]
    finally:
        cluster.close()
