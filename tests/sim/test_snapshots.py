"""Snapshot scenarios: compaction, InstallSnapshot in chunks to a lagging follower."""

from __future__ import annotations

import random

from dqueue.raft import MessageType
from dqueue.sim import LinkFaults

from .helpers import (
    churn,
    commit_value,
    diverge_old_leader,
    heal_and_commit,
    make_cluster,
    record_deliveries,
    same_logs,
)

UNRELIABLE = LinkFaults(drop=0.1, duplicate=0.05, delay=0.2, max_delay_ticks=5)


def _lag_follower(cluster, entries: int) -> str:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.ids if i != leader)
    cluster.crash(follower)
    for n in range(entries):
        cluster.propose(leader, b"value-%04d" % n)
        cluster.tick()
    commit_value(cluster, b"behind")
    assert cluster.raft(leader).log.snapshot_index > 0
    return follower


def test_snapshot_install_to_lagging_follower_in_chunks():
    cluster = make_cluster(3, snapshot_every=10, snapshot_chunk_bytes=32)
    follower = _lag_follower(cluster, 60)
    seen = record_deliveries(cluster)
    cluster.restart(follower)
    commit_value(cluster, b"caught-up")
    chunks = [m for m in seen if m.type is MessageType.INSTALL_SNAPSHOT and m.to == follower]
    assert len(chunks) > 1 and all(len(m.data) <= 32 for m in chunks)
    assert same_logs(cluster, cluster.ids)
    assert cluster.values(follower)[:2] == [b"value-0000", b"value-0001"]


def test_snapshot_install_over_unreliable_network():
    cluster = make_cluster(3, seed=5, snapshot_every=10, snapshot_chunk_bytes=32)
    follower = _lag_follower(cluster, 60)
    cluster.network.faults = UNRELIABLE
    cluster.restart(follower)
    cluster.run(300)
    cluster.network.faults = LinkFaults()
    commit_value(cluster, b"caught-up", max_ticks=600)
    assert same_logs(cluster, cluster.ids)


def test_snapshot_install_with_crashes():
    cluster = make_cluster(5, seed=9, faults=UNRELIABLE, snapshot_every=8,
                           snapshot_chunk_bytes=24)
    churn(cluster, random.Random(9), ticks=1200, clients=1, propose=0.5, crash=0.01,
          restart=0.01, prefix=b"s")
    heal_and_commit(cluster)
    assert same_logs(cluster, cluster.ids)
    assert cluster.delivered_by_type.get("INSTALL_SNAPSHOT", 0) > 0


def test_log_index_never_decreases_after_all_members_crash_with_snapshots():
    cluster = make_cluster(3, seed=2, snapshot_every=5)
    cluster.wait_leader()
    for n in range(30):
        commit_value(cluster, b"x%d" % n)
    last = {i: cluster.raft(i).log.last_index() for i in cluster.ids}
    commit = {i: cluster.raft(i).log.committed for i in cluster.ids}
    for node_id in cluster.ids:
        cluster.crash(node_id)
    for node_id in cluster.ids:
        cluster.restart(node_id)
        raft = cluster.raft(node_id)
        assert raft.log.snapshot_index > 0
        assert raft.log.last_index() >= last[node_id]
        # Applied entries were persisted as committed first; a restart can lose none.
        assert raft.log.committed >= raft.log.snapshot_index
        assert raft.log.committed <= commit[node_id]
    commit_value(cluster, b"after")
    assert cluster.values("n1")[:30] == [b"x%d" % n for n in range(30)]


def test_restart_right_after_snapshot_install_ignores_replaced_entries():
    """A follower with divergent entries takes a snapshot and crashes before anything else
    reaches its disk: the stale entries above the snapshot must not come back as its log."""
    cluster = make_cluster(3, seed=4, snapshot_every=10, snapshot_chunk_bytes=1 << 20)
    old, _, _ = diverge_old_leader(cluster, stale=40, fresh=25, ticks=3)
    cluster.network.heal()
    # Crash in the tick the snapshot lands, before the leader's next appends are persisted.
    cluster.run_until(lambda: cluster.raft(old).log.snapshot_index > 0, 100)
    cluster.crash(old)
    disk = cluster.disks[old].state
    assert disk.snapshot is not None
    assert any(e.term < disk.snapshot.meta.term for e in disk.entries)
    cluster.restart(old)
    log = cluster.raft(old).log
    assert log.last_term() >= disk.snapshot.meta.term
    commit_value(cluster, b"after")
    assert same_logs(cluster, cluster.ids)
