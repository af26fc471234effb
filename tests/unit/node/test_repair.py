"""Repairing a corrupt store: what ``Store.repair`` keeps and wipes, and ``open_store``."""

from __future__ import annotations

import lmdb
import pytest

from dqueue.node.repair import RepairRefused, open_store
from dqueue.node.store import (
    CorruptRecord,
    Store,
    StoredEntry,
    StoredHardState,
    StoredSnapshot,
    encode_entry,
)

MAP_BYTES = 64 << 20


def _corrupt(data_dir: str, db_name: bytes, key: bytes) -> None:
    env = lmdb.open(data_dir + "/raft.lmdb", max_dbs=4, map_size=MAP_BYTES)
    db = env.open_db(db_name)
    with env.begin(write=True) as txn:
        value = bytearray(txn.get(key, db=db))
        value[-1] ^= 0xFF
        txn.put(key, bytes(value), db=db)
    env.close()


def _filled(data_dir: str) -> None:
    """Snapshot at 10, log 11..20 of terms 2 and 3, voted for n2 in term 3, commit 18."""
    store = Store(data_dir, map_size_bytes=MAP_BYTES)
    store.save(members=("n1", "n2", "n3"),
               snapshot=StoredSnapshot(10, 2, ("n1", "n2", "n3"), b"state at 10"))
    store.save(entries=[StoredEntry(i, 2 if i < 15 else 3, 0, b"e%d" % i) for i in range(11, 21)],
               hard_state=StoredHardState(3, "n2", 18))
    store.close()


def test_repair_wipes_log_and_snapshot_and_keeps_term_vote_members(tmp_path):
    data_dir = str(tmp_path)
    _filled(data_dir)
    _corrupt(data_dir, b"log", encode_entry(15, 0, 0, b"")[0])
    store = Store(data_dir, map_size_bytes=MAP_BYTES)
    with pytest.raises(CorruptRecord, match="index 15"):
        store.load()
    assert store.repair() == 20  # the last index the log had
    loaded = store.load()
    assert loaded.entries == [] and loaded.snapshot is None
    assert loaded.hard_state == StoredHardState(3, "n2", 0)
    assert loaded.members == ("n1", "n2", "n3")
    assert loaded.catch_up_index == 20
    store.clear_catch_up()
    assert store.load().catch_up_index == 0
    store.close()


def test_a_second_repair_keeps_the_higher_catch_up_index(tmp_path):
    data_dir = str(tmp_path)
    _filled(data_dir)
    store = Store(data_dir, map_size_bytes=MAP_BYTES)
    assert store.repair() == 20
    store.save(entries=[StoredEntry(i, 3, 0, b"x") for i in range(1, 6)])  # refilled a bit
    assert store.repair() == 20  # still behind the first repair's index
    store.close()


def test_open_store_repairs_only_when_asked(tmp_path):
    data_dir = str(tmp_path)
    _filled(data_dir)
    _corrupt(data_dir, b"snapshot", b"data")
    with pytest.raises(CorruptRecord, match="--repair"):
        open_store(data_dir, repair=False, member_count=3)
    with pytest.raises(RepairRefused, match="single-node"):
        open_store(data_dir, repair=True, member_count=1)
    store, loaded = open_store(data_dir, repair=True, member_count=3)
    assert loaded.catch_up_index == 20 and loaded.hard_state == StoredHardState(3, "n2", 0)
    store.close()
    store, loaded = open_store(data_dir, repair=True, member_count=3)  # nothing to repair now
    assert loaded.catch_up_index == 20 and loaded.members == ("n1", "n2", "n3")
    store.close()


def test_repair_refused_when_the_vote_is_unreadable(tmp_path):
    data_dir = str(tmp_path)
    _filled(data_dir)
    _corrupt(data_dir, b"meta", b"hard_state")
    with pytest.raises(RepairRefused, match="Replacing a dead node"):
        open_store(data_dir, repair=True, member_count=3)
    store = Store(data_dir, map_size_bytes=MAP_BYTES)
    with pytest.raises(CorruptRecord, match="hard_state"):
        store.load()  # nothing was wiped
    assert store.log_bounds() == (11, 20)
    store.close()


def test_repair_records_the_term_with_the_catch_up_index(tmp_path):
    """The Raft core lets a repaired member vote again once it holds a committed entry of a
    term above its term at the repair (docs/raft.md, "Repair"): the repair stores that term,
    a later repair the (higher) term then, and clear_catch_up forgets both."""
    data_dir = str(tmp_path)
    _filled(data_dir)  # term 3
    store = Store(data_dir, map_size_bytes=MAP_BYTES)
    store.repair()
    loaded = store.load()
    assert (loaded.catch_up_index, loaded.catch_up_term) == (20, 3)
    store.save(hard_state=StoredHardState(5, None, 0))
    store.repair()
    assert (store.load().catch_up_index, store.load().catch_up_term) == (20, 5)
    store.clear_catch_up()
    loaded = store.load()
    assert (loaded.catch_up_index, loaded.catch_up_term) == (0, None)
    store.close()


def test_a_catch_up_index_stored_without_its_term_still_loads(tmp_path):
    """A store repaired by a version that recorded only the index: the term is unknown
    (None), and the core takes the stored term instead, which is at least the term at the
    repair (terms never decrease), so the relaxed rule only gets stricter."""
    from dqueue.node.codec import persisted_state
    from dqueue.node.store import _KEY_CATCH_UP_TERM

    data_dir = str(tmp_path)
    _filled(data_dir)
    store = Store(data_dir, map_size_bytes=MAP_BYTES)
    store.repair()
    store.save(hard_state=StoredHardState(4, None, 0))
    store.close()
    env = lmdb.open(data_dir + "/raft.lmdb", max_dbs=4, map_size=MAP_BYTES)
    with env.begin(write=True) as txn:
        assert txn.delete(_KEY_CATCH_UP_TERM, db=env.open_db(b"meta", txn=txn))
    env.close()
    store = Store(data_dir, map_size_bytes=MAP_BYTES)
    loaded = store.load()
    assert (loaded.catch_up_index, loaded.catch_up_term) == (20, None)
    state = persisted_state(loaded)
    assert state is not None and state.catch_up_term is None
    store.close()
