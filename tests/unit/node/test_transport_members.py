"""PeerTransport.set_peers: the transport follows the configuration (issue 16). A member added
online is connected to and heard; a removed one is dropped and, with keys, its key refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from dqueue.keys import create_cluster_keys, load_member_keys, load_peer_keys
from dqueue.node.transport import PeerTransport
from dqueue.testing import free_port, wait_for
from tests.unit.node.test_transport import pump, send_until_up

IDS = ("a", "b", "c", "d")


@pytest.fixture
def addrs() -> dict[str, str]:
    return {n: f"127.0.0.1:{free_port()}" for n in IDS}


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    create_cluster_keys(str(tmp_path / "keys"), list(IDS))
    return tmp_path / "keys"


@pytest.fixture
def made() -> Iterator[list[tuple[PeerTransport, zmq.Context]]]:
    made: list[tuple[PeerTransport, zmq.Context]] = []
    yield made
    for t, ctx in made:
        t.close()
        ctx.term()


def _make(made, node_id: str, addrs: dict[str, str], peers: tuple[str, ...],
          keydir: Path | None) -> PeerTransport:
    ctx = zmq.Context()
    keys = (load_peer_keys(str(keydir / node_id), node_id, list(peers))
            if keydir is not None else None)
    t = PeerTransport(ctx, node_id, addrs[node_id], {p: addrs[p] for p in peers}, keys)
    made.append((t, ctx))
    return t


@pytest.mark.parametrize("secure", [False, True])
def test_a_member_added_is_connected_and_a_removed_one_dropped(made, addrs, keydir, secure):
    folder = keydir if secure else None
    a = _make(made, "a", addrs, ("a", "b", "c"), folder)
    c = _make(made, "c", addrs, ("a", "c"), folder)
    d = _make(made, "d", addrs, ("a", "d"), folder)
    assert a.peer_ids == ["b", "c"]
    keys = load_member_keys(str(keydir / "a")) if secure else None
    # d joins: a connects to it and hears it.
    a.set_peers({p: addrs[p] for p in ("a", "b", "c", "d")}, keys)
    assert a.peer_ids == ["b", "c", "d"]
    send_until_up(a, [c, d], "d", [1])
    pump([a, d], lambda: d.counters.received >= 1)
    send_until_up(d, [a], "a", [2])
    got = pump([a, d], lambda: a.counters.received >= 1)
    assert ("d", b"raft", [2]) in got
    # c is removed: no connection to it, and its messages are dropped from then on.
    send_until_up(c, [a], "a", [3])
    pump([a, c], lambda: a.counters.received >= 2)
    a.set_peers({p: addrs[p] for p in ("a", "b", "d")},
                {m: k for m, k in keys.items() if m != "c"} if keys else None)
    assert a.peer_ids == ["b", "d"]
    assert not a.send("c", b"raft", [4])
    before = a.counters.received
    c.send("a", b"raft", [5])
    pump([a, c], lambda: a.counters.unknown_peer >= 1)
    assert a.counters.received == before


def test_a_removed_members_key_is_refused_at_its_next_handshake(made, addrs, keydir):
    a = _make(made, "a", addrs, ("a", "b", "c"), keydir)
    keys = load_member_keys(str(keydir / "a"))
    a.set_peers({p: addrs[p] for p in ("a", "b")}, {m: keys[m] for m in ("a", "b")})
    # c still trusts a and connects with its own (valid, once admitted) key.
    c = _make(made, "c", addrs, ("a", "c"), keydir)
    for _ in range(3):
        c.send("a", b"raft", [1])
    pump([a, c], lambda: a.rejected_by_reason()["unknown_key"] >= 1)
    assert a.counters.received == 0


def test_a_joining_member_hears_any_member_id(made, addrs):
    d = _make(made, "d", addrs, ("a", "d"), None)
    a = _make(made, "a", addrs, ("a", "b", "d"), None)
    d.set_peers({p: addrs[p] for p in ("a", "d")}, None, hear_any_member=True)
    b = _make(made, "b", addrs, ("b", "d"), None)  # a member d was never told of
    send_until_up(b, [d], "d", [7])
    got = pump([b, d], lambda: d.counters.received >= 1)
    assert got == [("b", b"raft", [7])]
    d.set_peers({p: addrs[p] for p in ("a", "d")}, None)
    b.send("d", b"raft", [8])
    pump([b, d], lambda: d.counters.unknown_peer >= 1)
    assert a.peer_ids == ["b", "d"]


@pytest.mark.parametrize("secure", [False, True])
def test_a_member_without_address_is_heard_but_not_sent_to(made, addrs, keydir, secure):
    """peer_book.py: a member bootstrapped by --peers is in no context; a member that joined
    later has no address for it until its hello, so it must hear it first. Secure: only a
    member whose key is known is heard."""
    folder = keydir if secure else None
    d = _make(made, "d", addrs, ("a", "d"), folder)
    b = _make(made, "b", addrs, ("b", "d"), folder)
    keys = load_member_keys(str(keydir / "d")) if secure else None
    d.set_peers({p: addrs[p] for p in ("a", "d")}, keys, heard=("b",))
    assert d.peer_ids == ["a"] and not d.send("b", b"raft", [1])
    send_until_up(b, [d], "d", [2])
    got = pump([b, d], lambda: d.counters.received >= 1)
    assert got == [("b", b"raft", [2])]
    d.set_peers({p: addrs[p] for p in ("a", "d")}, keys)  # no longer heard
    b.send("d", b"raft", [3])
    pump([b, d], lambda: d.counters.unknown_peer >= 1 or bool(
        secure and d.rejected_by_reason().get("unknown_key")))
    assert d.counters.received == 1


def test_a_peer_whose_process_closes_its_sockets_is_reported_lost(made, addrs):
    """lost_peers: the DEALER's connection to a peer closed (as when its process dies), so the
    node can tell the Raft core at once (Raft.peer_lost) instead of waiting out a timeout."""
    a = _make(made, "a", addrs, ("a", "b", "c"), None)
    b = _make(made, "b", addrs, ("a", "b"), None)
    c = _make(made, "c", addrs, ("a", "c"), None)
    send_until_up(a, [b, c], "b", [1])
    send_until_up(a, [b, c], "c", [1])
    assert a.lost_peers() == []
    b.close()
    lost = wait_for(lambda: a.lost_peers(), 10, "a to see b's connection close")
    assert lost == ["b"]
    assert a.lost_peers() == []  # reported once
    a.set_peers({p: addrs[p] for p in ("a", "c")}, None)  # b removed: its monitor goes too
    assert a.lost_peers() == []
