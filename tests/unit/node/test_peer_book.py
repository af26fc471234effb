"""PeerBook (dqueue/node/peer_book.py): whom the transport connects to and admits for a
configuration: addresses and keys from members' contexts, else from --peers and the key folder."""

from __future__ import annotations

from dqueue.node.members import TransportSync
from dqueue.node.peer_book import PeerBook
from dqueue.protocol.member_context import MemberContext, encode_context
from dqueue.raft import Membership

N4_KEY = "A" * 40
CTX = encode_context(MemberContext("10.0.0.4:9090", "10.0.0.4:8080", N4_KEY))
PEERS = {"n1": "10.0.0.1:9090", "n2": "10.0.0.2:9090", "n3": "10.0.0.3:9090"}
FOLDER = {"n1": b"k1", "n2": b"k2", "n3": b"k3", "n9": b"k9"}


def test_a_member_added_online_is_reached_at_its_context():
    book = PeerBook("n1", PEERS, FOLDER)
    m = Membership(("n1", "n2", "n3"), ("n4",), (("n4", CTX),))
    targets = book.targets(m, ("n2", "n3", "n4"))
    assert targets.addresses == {**PEERS, "n4": "10.0.0.4:9090"}
    assert targets.keys == {"n1": b"k1", "n2": b"k2", "n3": b"k3", "n4": N4_KEY.encode()}
    assert targets.http == {"n4": "10.0.0.4:8080"} and not targets.hear_any_member


def test_a_removed_member_is_neither_reached_nor_admitted():
    book = PeerBook("n1", PEERS, FOLDER)
    targets = book.targets(Membership(("n1", "n3")), ("n3",))
    assert sorted(targets.addresses) == ["n1", "n3"]
    assert targets.keys is not None and "n2" not in targets.keys


def test_a_member_without_address_gets_no_connection():
    book = PeerBook("n1", PEERS, None)
    targets = book.targets(Membership(("n1", "n5")), ("n5",))
    assert targets.addresses == {"n1": PEERS["n1"]} and targets.keys is None


def test_a_joining_member_reaches_every_configured_peer_and_trusts_its_folder():
    book = PeerBook("n4", {**PEERS, "n4": "10.0.0.4:9090"}, FOLDER)
    targets = book.targets(Membership(()), ())
    assert targets.hear_any_member
    assert sorted(targets.addresses) == ["n1", "n2", "n3", "n4"]
    assert targets.keys == FOLDER


class _Transport:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str] | None, bool]] = []

    def set_peers(self, peers, keys, hear_any_member=False) -> None:
        self.calls.append((sorted(peers), sorted(keys) if keys is not None else None,
                           hear_any_member))


def test_a_follower_drops_a_removed_member_once_the_removal_is_applied():
    transport = _Transport()
    sync = TransportSync(PeerBook("n1", PEERS, FOLDER), transport)  # type: ignore[arg-type]
    before, after = Membership(("n1", "n2", "n3")), Membership(("n1", "n2"))
    assert sync.refresh(before, before) is not None
    # Appended, not applied: n3 still gets the entry that removes it, and is still admitted.
    assert sync.refresh(after, before) is not None
    assert transport.calls[-1][:2] == (["n1", "n2", "n3"], ["n1", "n2", "n3"])
    assert sync.refresh(after, after) is not None
    assert transport.calls[-1][:2] == (["n1", "n2"], ["n1", "n2"])
    assert sync.refresh(after, after) is None  # nothing changed: the transport is left alone
    assert len(transport.calls) == 3
