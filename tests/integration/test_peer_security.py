"""Attacks on the peer port of real 3-node clusters, from a process that is not a member.

With keys (``secure=True``: CurveZMQ, docs/security.md) a stranger cannot complete a handshake,
so nothing it sends, with any routing identity, reaches a member's Raft core, and the cluster
keeps accepting writes meanwhile. Without keys on loopback the same attacks are run and the tests
named ``test_loopback_only_still_allows_*`` document what such a cluster still lets any local
process do.

The forged messages use the project's own codec (``message_to_plain`` + ``dqueue.protocol.wire``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from dqueue.node.transport import tcp_endpoint
from dqueue.protocol import wire
from dqueue.protocol.kinds import PeerKind
from dqueue.raft import Entry, Message, MessageType, message_to_plain
from dqueue.testing.raftproc import (
    RaftCluster,
    Writer,
    wait_raft,
)

pytestmark = pytest.mark.integration

# Far above any term a test reaches, and inside 0..2^63-1 so that it is a valid term.
HUGE_TERM = 1 << 40
# Slower elections than the default (0.5 s): a spurious election on a loaded machine would
# change the term and the log that the tests check are untouched.
TIMING = {"election_ticks": 30, "heartbeat_ticks": 3}
HANDSHAKE_DEADLINE_S = 5.0
FAILED_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                 | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
WATCHED_EVENTS = FAILED_EVENTS | zmq.EVENT_HANDSHAKE_SUCCEEDED
WRITES_PER_WINDOW = 150


class Intruder:
    """A DEALER of a process that is not a member, with a monitor on its handshakes.

    Args:
        addr: the peer port to connect to.
        identity: the routing identity it claims (a member's, to forge).
        server_key: when given, a CURVE client with a fresh random key pair and this server
            key (the member's real public key); else the NULL mechanism.
    """

    def __init__(self, addr: str, identity: bytes, server_key: bytes | None = None) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.IDENTITY, identity)
        self.socket.setsockopt(zmq.LINGER, 0)
        if server_key is not None:
            public, secret = zmq.curve_keypair()
            self.socket.curve_publickey, self.socket.curve_secretkey = public, secret
            self.socket.curve_serverkey = server_key
        self.monitor = self.socket.get_monitor_socket(WATCHED_EVENTS)
        self.socket.connect(tcp_endpoint(addr, bind=False))

    def handshake(self, deadline_s: float = HANDSHAKE_DEADLINE_S) -> str:
        """``succeeded``, ``failed`` (a HANDSHAKE_FAILED_* event) or ``none`` by the deadline."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.monitor.poll(50):
                event = recv_monitor_message(self.monitor)["event"]
                return "succeeded" if event == zmq.EVENT_HANDSHAKE_SUCCEEDED else "failed"
        return "none"

    def send(self, kind: bytes, body: Any) -> None:
        """Queue one message in the project's framing (sent once a handshake completes)."""
        self.socket.send_multipart(wire.encode(kind, body), zmq.NOBLOCK)

    def close(self) -> None:
        """Close the sockets and the context."""
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(0)
        self.context.term()


def figures(cluster: RaftCluster, node: str) -> dict[str, Any]:
    """The member's metrics map (term, role, indexes, counters)."""
    return cluster.client(node).read({"op": "metrics"})


def core_state(cluster: RaftCluster, node: str) -> tuple[int, str, int, int]:
    """What a forged message would move: (term, role, last index, commit index)."""
    m = figures(cluster, node)
    return m["term"], m["role"], m["last_index"], m["commit_index"]


def rejected(cluster: RaftCluster, node: str) -> dict[str, int]:
    """``dqueue_raft_peer_rejected_total`` of a member, by reason."""
    return figures(cluster, node)["peer_rejected_total"]["values"]


def public_key(cluster: RaftCluster, node: str) -> bytes:
    """A member's real public key (a stranger can know it: it is public)."""
    assert cluster.keys_dir is not None
    text = (cluster.keys_dir / node / "members" / f"{node}.key").read_text()
    return text.split('public-key = "', 1)[1].split('"', 1)[0].encode()


def forgeries(cluster: RaftCluster, leader: str, follower: str) -> list[tuple[str, str, bytes,
                                                                            Any]]:
    """(target, claimed sender, kind, body) of each forged message of the tests."""
    term, _, last, commit = core_state(cluster, follower)
    other = next(n for n in cluster.ids if n not in (leader, follower))
    plain = message_to_plain
    return [
        # To a follower, as the leader: a heartbeat with a huge term (would depose everyone).
        (follower, leader, PeerKind.RAFT, plain(Message(
            MessageType.HEARTBEAT, to=follower, sender=leader, term=HUGE_TERM, commit=commit))),
        # To a follower, as the leader: an entry the leader never wrote, committed at once.
        (follower, leader, PeerKind.RAFT, plain(Message(
            MessageType.APPEND_ENTRIES, to=follower, sender=leader, term=term, index=last,
            log_term=term, entries=(Entry(last + 1, term, data=b"forged"),), commit=commit))),
        # To the leader, as a follower: an acknowledgement of entries it does not hold.
        (leader, other, PeerKind.RAFT, plain(Message(
            MessageType.APPEND_ENTRIES_RESPONSE, to=leader, sender=other, term=term,
            index=last + 5))),
        # To the leader, as a follower: a forwarded configure that changes the settings.
        (leader, other, PeerKind.FWD, {
            "rid": "forged-configure", "timeout_ms": 1_000, "wait_ms": 0,
            "cmd": {"op": "configure", "settings": {"lease_ms": 1_234}}}),
    ]


@pytest.fixture
def secured(cluster_factory) -> Iterator[tuple[RaftCluster, str, list[str]]]:
    cluster = cluster_factory(3, secure=True, **TIMING)
    cluster.start()
    leader = cluster.leader()
    yield cluster, leader, [n for n in cluster.ids if n != leader]


def test_secured_cluster_refuses_handshakes_of_strangers(secured):
    cluster, _, _ = secured
    before = {n: rejected(cluster, n) for n in cluster.ids}
    intruders = []
    try:
        for node in cluster.ids:
            addr = cluster.configs[node].raft_addr
            intruders.append((node, "curve", Intruder(addr, b"n1", public_key(cluster, node))))
            intruders.append((node, "null", Intruder(addr, b"n1")))
        outcomes = {(node, how): i.handshake() for node, how, i in intruders}
        print("handshakes of strangers:", outcomes)
        assert "succeeded" not in outcomes.values()
        # Each member counted both refusals: the CURVE client's unknown key (ZAP) and the
        # NULL client's failed handshake.
        for node in cluster.ids:
            wait_raft(lambda n=node: rejected(cluster, n)["unknown_key"] > before[n]["unknown_key"]
                      and rejected(cluster, n)["handshake_failed"]
                      > before[n]["handshake_failed"], 10, f"{node} to count the refusals")
        print("rejected after:", {n: {k: v for k, v in rejected(cluster, n).items() if v}
                                  for n in cluster.ids})
        assert not any("peer_transport_insecure" in cluster.log_text(n) for n in cluster.ids)
    finally:
        for _, _, intruder in intruders:
            intruder.close()


def test_secured_cluster_forged_messages_never_reach_the_core(secured):
    cluster, leader, followers = secured
    follower = followers[0]
    # Quiet and settled: the leader committed all it holds (its no-op of the term may still be
    # in flight when the fixture returns) and every member knows that commit index.
    def settled() -> bool:
        lead = figures(cluster, leader)
        return lead["commit_index"] == lead["last_index"] and all(
            figures(cluster, n)["commit_index"] == lead["commit_index"] for n in cluster.ids)

    wait_raft(settled, 10, "the followers to learn the commit index")
    state = {n: core_state(cluster, n) for n in cluster.ids}
    intruders = []
    try:
        for target, claimed, kind, body in forgeries(cluster, leader, follower):
            addr = cluster.configs[target].raft_addr
            for server_key in (None, public_key(cluster, target)):
                intruder = Intruder(addr, claimed.encode(), server_key)
                intruder.send(kind, body)
                intruders.append(intruder)
        # Every connection that carried a forgery was refused: nothing of it can arrive.
        assert [i.handshake() for i in intruders] == ["failed"] * len(intruders)
        after = {n: core_state(cluster, n) for n in cluster.ids}
        print("(term, role, last index, commit) before:", state, "after:", after)
        assert after == state
    finally:
        for intruder in intruders:
            intruder.close()


class Attacker(threading.Thread):
    """Forges messages at every member, over fresh connections, until stopped."""

    def __init__(self, cluster: RaftCluster, messages: list[tuple[str, str, bytes, Any]],
                 secure: bool) -> None:
        super().__init__(daemon=True)
        self.cluster, self.messages, self.secure = cluster, messages, secure
        self.connections = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for target, claimed, kind, body in self.messages:
                key = public_key(self.cluster, target) if self.secure else None
                intruder = Intruder(self.cluster.configs[target].raft_addr, claimed.encode(),
                                    key)
                try:
                    intruder.send(kind, body)
                    intruder.handshake(0.5)
                finally:
                    intruder.close()
                self.connections += 1

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._stop_event.set()
        self.join(30)


def writes_per_second(writer: Writer, count: int = WRITES_PER_WINDOW) -> float:
    """Acknowledged writes per second over the next ``count`` acknowledgements."""
    start_count, start = len(writer.acked), time.monotonic()
    wait_raft(lambda: len(writer.acked) >= start_count + count, 20, f"{count} writes")
    return count / (time.monotonic() - start)


def test_secured_cluster_keeps_accepting_writes_under_attack(secured):
    cluster, leader, followers = secured
    writer = Writer(cluster, "w", [leader])
    writer.start()
    attacker = Attacker(cluster, forgeries(cluster, leader, followers[0]), secure=True)
    try:
        before = writes_per_second(writer)
        attacker.start()
        wait_raft(lambda: attacker.connections >= 4, 20, "the attack to start")
        during = writes_per_second(writer)
        print(f"writes/s before the attack {before:.0f}, during it {during:.0f} "
              f"({attacker.connections} forged connections refused so far)")
    finally:
        attacker.stop()
        writer.stop()
    assert during > 0
    assert figures(cluster, leader)["term"] < HUGE_TERM


# --------------------------------------------------------------- without keys, on loopback


@pytest.fixture
def loopback(cluster_factory) -> Iterator[tuple[RaftCluster, str, list[str]]]:
    cluster = cluster_factory(3, **TIMING)
    cluster.start()
    leader = cluster.leader()
    yield cluster, leader, [n for n in cluster.ids if n != leader]


def test_loopback_only_still_allows_a_local_process_to_connect_as_a_member(loopback):
    cluster, leader, _ = loopback
    intruder = Intruder(cluster.configs[leader].raft_addr, b"n1")
    try:
        assert intruder.handshake() == "succeeded"
    finally:
        intruder.close()
    assert all("peer_transport_insecure" in cluster.log_text(n) for n in cluster.ids)
    # Nothing is counted as forged: without keys a claimed identity cannot be told from the
    # real one.
    assert rejected(cluster, leader)["forged_identity"] == 0


def test_loopback_only_still_allows_a_forged_heartbeat_to_reach_the_core(loopback):
    cluster, leader, followers = loopback
    target, claimed, kind, body = forgeries(cluster, leader, followers[0])[0]
    intruder = Intruder(cluster.configs[target].raft_addr, claimed.encode())
    try:
        intruder.send(kind, body)
        term = wait_raft(lambda: figures(cluster, target)["term"] >= HUGE_TERM and
                         figures(cluster, target)["term"], 10, "the forged term to arrive")
    finally:
        intruder.close()
    print(f"{target}'s term after a forged heartbeat from a loopback process: {term}")
    assert term == HUGE_TERM


def test_loopback_only_still_allows_a_forged_forwarded_configure(loopback):
    cluster, leader, followers = loopback
    target, claimed, kind, body = forgeries(cluster, leader, followers[0])[3]
    assert (target, kind) == (leader, PeerKind.FWD)
    commit = figures(cluster, leader)["commit_index"]
    intruder = Intruder(cluster.configs[target].raft_addr, claimed.encode())
    try:
        intruder.send(kind, body)
        # No client writes meanwhile: the entry committed is the forged configure.
        wait_raft(lambda: figures(cluster, leader)["commit_index"] > commit, 10,
                  "the forged configure to commit")
    finally:
        intruder.close()
