"""The worker gateway's ZAP decision: worker keys only, or loopback only, or anyone."""

from __future__ import annotations

import dataclasses

import pytest
import zmq
from zmq.utils import z85

from dqueue.api.auth import PortMode
from dqueue.api.worker_auth import (
    WORKER_ZAP_DOMAIN,
    WorkerPolicy,
    decide_worker,
    gateway_security,
    key_port_mode,
)
from dqueue.config import NodeConfig
from dqueue.keys import PeerKeyError, create_cluster_keys
from dqueue.protocol.zap import PEER_ZAP_DOMAIN, ZapRequest

WORKER_PUBLIC, _ = zmq.curve_keypair()
MEMBER_PUBLIC, _ = zmq.curve_keypair()
STRANGER_PUBLIC, _ = zmq.curve_keypair()
SECURE = WorkerPolicy(PortMode.AUTHENTICATED, worker_keys={WORKER_PUBLIC: "w1"},
                      member_keys={MEMBER_PUBLIC: "n1"})


def curve(key: bytes, address: str = "10.250.0.9") -> ZapRequest:
    return ZapRequest(WORKER_ZAP_DOMAIN, address, b"CURVE", (z85.decode(key),))


def null(address: str) -> ZapRequest:
    return ZapRequest(WORKER_ZAP_DOMAIN, address, b"NULL")


def test_authenticated_admits_worker_keys_only_and_names_the_worker():
    verdict = decide_worker(SECURE, curve(WORKER_PUBLIC))
    assert verdict.admitted and verdict.user_id == "w1"
    assert decide_worker(SECURE, curve(MEMBER_PUBLIC)).reason == "member_key"
    assert decide_worker(SECURE, curve(STRANGER_PUBLIC)).reason == "unknown_key"
    assert decide_worker(SECURE, null("127.0.0.1")).reason == "mechanism"  # loopback too
    bad = ZapRequest(WORKER_ZAP_DOMAIN, "127.0.0.1", b"CURVE", (b"short",))
    assert decide_worker(SECURE, bad).reason == "malformed"
    peer = dataclasses.replace(curve(WORKER_PUBLIC), domain=PEER_ZAP_DOMAIN)
    assert decide_worker(SECURE, peer).reason == "unknown_domain"


@pytest.mark.parametrize("address, protected, opened", [
    ("127.0.0.1", True, True), ("::1", True, True), ("::ffff:127.0.0.1", True, True),
    ("10.250.0.9", False, True), ("::ffff:10.250.0.9", False, True), ("", False, True),
])
def test_protected_admits_loopback_only_and_insecure_everyone(address, protected, opened):
    assert decide_worker(WorkerPolicy(PortMode.PROTECTED), null(address)).admitted is protected
    assert decide_worker(WorkerPolicy(PortMode.OPEN), null(address)).admitted is opened
    for mode in (PortMode.PROTECTED, PortMode.OPEN):
        refused = decide_worker(WorkerPolicy(mode), curve(WORKER_PUBLIC, address))
        assert refused.reason == "mechanism"


def test_security_from_the_configuration(tmp_path):
    assert key_port_mode(NodeConfig(id="n1", secure_dir="x")) is PortMode.AUTHENTICATED
    assert key_port_mode(NodeConfig(id="n1", insecure=True)) is PortMode.OPEN
    assert gateway_security(NodeConfig(id="n1")).policy.mode is PortMode.PROTECTED
    assert gateway_security(NodeConfig(id="n1", insecure=True)).policy.mode is PortMode.OPEN
    create_cluster_keys(str(tmp_path), ["n1"], ["w1", "w2"])
    security = gateway_security(NodeConfig(id="n1", secure_dir=str(tmp_path / "n1")))
    assert security.policy.mode is PortMode.AUTHENTICATED
    assert sorted(security.policy.worker_keys.values()) == ["w1", "w2"]
    assert security.secret_key and security.public_key
    with pytest.raises(PeerKeyError):
        gateway_security(NodeConfig(id="n1", secure_dir=str(tmp_path / "missing")))
