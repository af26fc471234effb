"""Loading a worker's CURVE keys, and the messages of a refused handshake."""

from __future__ import annotations

import pytest
import zmq

from dqueue.client.worker_keys import WorkerKeyError, WorkerKeys, handshake_error
from dqueue.client.zmq_client import ZmqWorkerClient
from dqueue.keys import create_cluster_keys


def test_from_a_worker_folder_with_one_or_several_members(tmp_path):
    create_cluster_keys(str(tmp_path / "one"), ["n1"], ["w1"])
    keys = WorkerKeys.from_secure_dir(str(tmp_path / "one" / "w1"))
    assert len(keys.public_key) == 40 and len(keys.secret_key) == 40
    node_public = (tmp_path / "one" / "n1" / "members" / "n1.key").read_text()
    assert keys.server_key.decode() in node_public
    create_cluster_keys(str(tmp_path / "three"), ["n1", "n2", "n3"], ["w1"])
    with pytest.raises(WorkerKeyError, match="which node's key"):
        WorkerKeys.from_secure_dir(str(tmp_path / "three" / "w1"))
    n2 = WorkerKeys.from_secure_dir(str(tmp_path / "three" / "w1"), "n2")
    assert n2.server_key.decode() in (tmp_path / "three" / "n2" / "members" / "n2.key").read_text()
    with pytest.raises(WorkerKeyError, match=r"n9\.key"):
        WorkerKeys.from_secure_dir(str(tmp_path / "three" / "w1"), "n9")
    with pytest.raises(WorkerKeyError, match="key_secret"):
        WorkerKeys.from_secure_dir(str(tmp_path / "three"))


def test_keys_know_their_workers_name(tmp_path):
    create_cluster_keys(str(tmp_path), ["n1"], ["w1"])
    assert WorkerKeys.from_secure_dir(str(tmp_path / "w1")).name == "w1"
    secret = tmp_path / "w1" / "w1.key_secret"
    public = str(tmp_path / "w1" / "members" / "n1.key")
    assert WorkerKeys.from_files(str(secret), public).name == "w1"
    renamed = tmp_path / "mine.secret"
    renamed.write_bytes(secret.read_bytes())
    assert WorkerKeys.from_files(str(renamed), public).name == ""
    # A client with keys holds its leases as that worker unless told otherwise.
    client = ZmqWorkerClient("tcp://127.0.0.1:1", keys=WorkerKeys.from_files(str(secret), public))
    try:
        assert client.worker_id == "w1"
    finally:
        client.close_socket()


def test_from_files_needs_a_secret_key(tmp_path):
    create_cluster_keys(str(tmp_path), ["n1"], ["w1"])
    public = str(tmp_path / "w1" / "members" / "n1.key")
    secret = str(tmp_path / "w1" / "w1.key_secret")
    assert WorkerKeys.from_files(secret, public).server_key
    with pytest.raises(WorkerKeyError, match="no secret key"):
        WorkerKeys.from_files(public, public)
    with pytest.raises(WorkerKeyError, match="not a readable key file"):
        WorkerKeys.from_files(str(tmp_path / "nope"), public)


def test_each_refusal_says_what_to_fix():
    auth = str(handshake_error("tcp://h:1", zmq.EVENT_HANDSHAKE_FAILED_AUTH, curve=True))
    assert "refused this worker's key" in auth and "workers/" in auth
    protected = str(handshake_error("tcp://h:1", zmq.EVENT_HANDSHAKE_FAILED_AUTH, curve=False))
    assert "protected mode" in protected and "--insecure" in protected
    needs = str(handshake_error("tcp://h:1", zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, curve=False))
    assert "requires CURVE keys" in needs and "--secure-dir" in needs
    no_curve = str(handshake_error("tcp://h:1", zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, curve=True))
    assert "does not speak CURVE" in no_curve
    silent = str(handshake_error("tcp://h:1", zmq.EVENT_DISCONNECTED, curve=True))
    assert "server key" in silent
