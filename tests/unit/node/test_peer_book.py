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


def test_a_member_without_address_gets_no_connection_until_its_hello():
    book = PeerBook("n1", PEERS, None)
    targets = book.targets(Membership(("n1", "n5")), ("n5",))
    assert targets.addresses == {"n1": PEERS["n1"]} and targets.keys is None
    assert targets.heard == ("n5",)  # heard, so that its hello can arrive
    assert not book.learn("n2", "10.0.0.9:9090")  # not in the configuration: ignored
    assert not book.learn("n1", "10.0.0.9:9090")  # ourselves
    assert book.learn("n5", "10.0.0.5:9090")
    assert not book.learn("n5", "10.0.0.5:9090")  # nothing new
    targets = book.targets(Membership(("n1", "n5")), ("n5",))
    assert targets.addresses == {"n1": PEERS["n1"], "n5": "10.0.0.5:9090"}
    assert targets.heard == ()


def test_a_hello_never_overrides_a_context_or_configured_address():
    book = PeerBook("n1", PEERS, FOLDER)
    m = Membership(("n1", "n2", "n4"), (), (("n4", CTX),))
    book.targets(m, ("n2", "n4"))
    assert not book.learn("n2", "10.6.6.6:9090") and not book.learn("n4", "10.6.6.6:9090")
    assert book.targets(m, ("n2", "n4")).addresses["n4"] == "10.0.0.4:9090"


def test_a_member_without_address_is_heard_with_its_folder_key():
    book = PeerBook("n4", {"n4": "10.0.0.4:9090"}, FOLDER)
    targets = book.targets(Membership(("n1", "n4")), ("n1",))
    assert targets.heard == ("n1",) and targets.keys == {"n1": b"k1"}


def test_a_joining_member_learns_any_member_up_to_the_bound():
    book = PeerBook("n4", {"n4": "10.0.0.4:9090"}, None)
    assert book.targets(Membership(()), ()).hear_any_member
    assert book.learn("n1", "10.0.0.1:9090")
    assert book.targets(Membership(()), ()).addresses == {
        "n1": "10.0.0.1:9090", "n4": "10.0.0.4:9090"}
    for i in range(200):
        book.learn(f"x{i}", "10.0.0.7:9090")
    assert len(book.announced) == 64  # MAX_MEMBERS


def test_a_joining_member_reaches_every_configured_peer_and_trusts_its_folder():
    book = PeerBook("n4", {**PEERS, "n4": "10.0.0.4:9090"}, FOLDER)
    targets = book.targets(Membership(()), ())
    assert targets.hear_any_member
    assert sorted(targets.addresses) == ["n1", "n2", "n3", "n4"]
    assert targets.keys == FOLDER


class _Transport:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str] | None, bool]] = []

    def set_peers(self, peers, keys, hear_any_member=False, heard=()) -> None:
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
