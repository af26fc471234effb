"""The ZAP decision of the peer port (pure) and the parsing of ZAP requests."""

from __future__ import annotations

import pytest
import zmq
from zmq.utils import z85

from dqueue.protocol.zap import (
    PEER_ZAP_DOMAIN,
    PeerPolicy,
    ZapRequest,
    decide,
    is_loopback,
    parse_request,
)

MEMBER_PUBLIC, _ = zmq.curve_keypair()
WORKER_PUBLIC, _ = zmq.curve_keypair()
STRANGER_PUBLIC, _ = zmq.curve_keypair()
SECURE = PeerPolicy(secure=True, member_keys={MEMBER_PUBLIC: "n1"},
                    worker_keys={WORKER_PUBLIC: "w1"})
LOOPBACK_ONLY = PeerPolicy(secure=False)


def curve(public: bytes, address: str = "10.0.0.7", domain: str = PEER_ZAP_DOMAIN) -> ZapRequest:
    return ZapRequest(domain, address, b"CURVE", (z85.decode(public),))


def null(address: str, domain: str = PEER_ZAP_DOMAIN) -> ZapRequest:
    return ZapRequest(domain, address, b"NULL")


def test_a_member_key_is_admitted_as_that_member():
    verdict = decide(SECURE, curve(MEMBER_PUBLIC))
    assert (verdict.admitted, verdict.user_id, verdict.status_code) == (True, "n1", b"200")


@pytest.mark.parametrize(("request_", "reason"), [
    (curve(STRANGER_PUBLIC), "unknown_key"),
    (curve(WORKER_PUBLIC), "worker_key"),  # a worker's key is for the gateway, not the peers
    (curve(MEMBER_PUBLIC, domain="other"), "unknown_domain"),
    (null("127.0.0.1"), "mechanism"),  # with keys, even loopback needs a member key
    (ZapRequest(PEER_ZAP_DOMAIN, "127.0.0.1", b"PLAIN", (b"user", b"pass")), "mechanism"),
    (ZapRequest(PEER_ZAP_DOMAIN, "127.0.0.1", b"CURVE", (b"short",)), "malformed"),
    (ZapRequest(PEER_ZAP_DOMAIN, "127.0.0.1", b"CURVE", ()), "malformed"),
])
def test_with_keys_everything_else_is_refused(request_, reason):
    verdict = decide(SECURE, request_)
    assert (verdict.admitted, verdict.user_id, verdict.reason) == (False, "", reason)
    assert verdict.status_code == b"400"


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"])
def test_without_keys_loopback_null_is_admitted_without_a_user_id(address):
    verdict = decide(LOOPBACK_ONLY, null(address))
    assert (verdict.admitted, verdict.user_id) == (True, "")


@pytest.mark.parametrize("address", ["10.0.0.2", "192.168.1.1", "::ffff:10.0.0.1", "fe80::1",
                                     "", "garbage"])
def test_without_keys_other_addresses_are_refused(address):
    assert decide(LOOPBACK_ONLY, null(address)).reason == "not_loopback"
    # ... unless --insecure
    assert decide(PeerPolicy(secure=False, any_address=True), null(address)).admitted


def test_without_keys_a_curve_client_is_refused():
    assert decide(LOOPBACK_ONLY, curve(MEMBER_PUBLIC, "127.0.0.1")).reason == "mechanism"


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("[::1]")
    assert not is_loopback("1.2.3.4") and not is_loopback("localhost")


def test_parse_request():
    key = z85.decode(MEMBER_PUBLIC)
    frames = [b"1.0", b"7", PEER_ZAP_DOMAIN.encode(), b"127.0.0.1", b"", b"CURVE", key]
    assert parse_request(frames) == (b"7", ZapRequest(PEER_ZAP_DOMAIN, "127.0.0.1", b"CURVE",
                                                      (key,)))
    assert parse_request(frames[:5]) is None
    assert parse_request([b"2.0", *frames[1:]]) is None
    # Undecodable text never raises: it just matches no domain.
    parsed = parse_request([b"1.0", b"1", b"\xff", b"\xfe", b"", b"NULL"])
    assert parsed is not None and not decide(LOOPBACK_ONLY, parsed[1]).admitted
