"""What a member does with bytes it cannot trust, on real processes and real LMDB (loopback):

- a garbage snapshot sent in chunks, with a valid-looking meta and a matching checksum, by a
  local process posing as a member (a loopback cluster without keys lets it connect,
  tests/integration/test_peer_security.py): the follower refuses it before persisting or
  acknowledging it, counts it, keeps its store and keeps following the real leader;
- a committed entry that is not a command batch: the Raft process stops with exit status 2 and
  a message naming the index, the item and the cause, instead of skipping it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest

from dqueue.node.codec import encode_item, join_items
from dqueue.node.store import Store, StoredEntry
from dqueue.protocol.kinds import PeerKind
from dqueue.raft import (
    EntryType,
    Membership,
    Message,
    MessageType,
    SnapshotMeta,
    message_to_plain,
)
from dqueue.testing.raftproc import (
    RaftCluster,
    enqueue_cmd,
    wait_raft,
)
from tests.integration.test_peer_security import Intruder, figures

pytestmark = pytest.mark.integration

# Slower elections than the default: a spurious election on a loaded machine would reset the
# receive buffer (a term change), which is not what the test is about.
TIMING = {"election_ticks": 30, "heartbeat_ticks": 3}
GARBAGE = b"\x00not a queue snapshot\xff" * 200
CHUNK_BYTES = 1_000


@pytest.fixture
def loopback(cluster_factory) -> Iterator[tuple[RaftCluster, str, list[str]]]:
    cluster = cluster_factory(3, **TIMING)
    cluster.start()
    leader = cluster.leader()
    yield cluster, leader, [n for n in cluster.ids if n != leader]


def test_a_garbage_snapshot_is_refused_and_the_follower_keeps_running(loopback):
    cluster, leader, followers = loopback
    follower, posed = followers
    # The intruder poses as a member that is down: taking over the identity of a connected
    # one would cut that member off (ROUTER_HANDOVER), which is another attack.
    assert cluster.stop(posed) == 0
    assert cluster.client(leader).command(enqueue_cmd("before"))["ok"]
    commit = figures(cluster, leader)["commit_index"]
    wait_raft(lambda: figures(cluster, follower)["commit_index"] == commit, 10,
              "the follower to learn the commit index")
    before = figures(cluster, follower)
    assert before["snapshots_rejected_total"] == 0
    meta = SnapshotMeta(commit + 100, before["term"], Membership(tuple(cluster.ids)),
                        zlib.crc32(GARBAGE))
    chunks = [GARBAGE[i:i + CHUNK_BYTES] for i in range(0, len(GARBAGE), CHUNK_BYTES)]
    intruder = Intruder(cluster.configs[follower].raft_addr, posed.encode())
    try:
        assert intruder.handshake() == "succeeded"
        for n, chunk in enumerate(chunks):
            intruder.send(PeerKind.RAFT, message_to_plain(Message(
                MessageType.INSTALL_SNAPSHOT, follower, posed, before["term"],
                snapshot_meta=meta, offset=n * CHUNK_BYTES, data=chunk,
                done=n == len(chunks) - 1)))
        wait_raft(lambda: figures(cluster, follower)["snapshots_rejected_total"] == 1, 10,
                  "the follower to refuse the snapshot")
    finally:
        intruder.close()
    after = figures(cluster, follower)
    print("follower before:", {k: before[k] for k in ("term", "commit_index", "snapshot_index")},
          "after:", {k: after[k] for k in ("term", "commit_index", "snapshot_index",
                                           "snapshots_rejected_total")})
    assert (after["term"], after["snapshot_index"], after["snapshots_installed_total"]) == (
        before["term"], before["snapshot_index"], before["snapshots_installed_total"])
    assert after["commit_index"] == after["applied_index"] == commit
    # It keeps running and following the real leader.
    assert cluster.is_running(follower)
    assert cluster.client(leader).command(enqueue_cmd("after"))["ok"]
    cluster.wait_applied(follower, commit + 1, 10)
    assert cluster.client(follower).read({"op": "get", "id": "after"}, stale=True)
    # Its store holds no snapshot and the log up to the commit index, as before.
    assert cluster.stop(follower) == 0
    store = Store(cluster.configs[follower].data_dir)
    try:
        loaded = store.load()
    finally:
        store.close()
    assert loaded.snapshot is None
    assert [e.index for e in loaded.entries] == list(range(1, len(loaded.entries) + 1))
    assert loaded.entries[-1].index >= commit + 1


def test_an_entry_that_cannot_be_applied_stops_the_member_with_status_2(cluster_factory):
    cluster = cluster_factory(1)
    cluster.start()
    node = cluster.leader()
    assert cluster.client(node).command(enqueue_cmd("t1"))["ok"]
    assert cluster.stop(node) == 0
    # While it is down: an entry after its log, with a valid record CRC, whose second item is
    # not a valid command. It commits (under the next term's no-op) when the member restarts.
    store = Store(cluster.configs[node].data_dir)
    try:
        loaded = store.load()
        last = loaded.entries[-1]
        bad = join_items([encode_item("", {"op": "tick", "now_ms": 1}),
                          encode_item("", {"op": "cancel", "now_ms": 1})])
        store.save(entries=[StoredEntry(last.index + 1, last.term, int(EntryType.NORMAL), bad)])
    finally:
        store.close()
    cluster.start(node)
    proc = cluster.procs[node]
    assert proc.wait(20) == 2
    text = cluster.log_text(node)
    print(text.strip().splitlines()[-2:])
    assert "apply_failed" in text
    assert f"committed log entry {last.index + 1}, item 1 cannot be applied" in text
    assert "InvalidCommand" in text and "id" in text
    # A restart meets the same entry again: it is never skipped.
    cluster.procs.pop(node)
    cluster.start(node)
    assert cluster.procs[node].wait(20) == 2
