"""The LMDB store: round trips, conflict truncation, snapshots, compaction, corruption."""

from __future__ import annotations

import os

import lmdb
import pytest

from dqueue.node.datadir_lock import DataDirLocked
from dqueue.node.store import (
    CorruptRecord,
    Store,
    StoredEntry,
    StoredHardState,
    StoredSnapshot,
    encode_entry,
)


def _entries(lo: int, hi: int, term: int = 1) -> list[StoredEntry]:
    return [StoredEntry(i, term, 0, f"d{i}".encode()) for i in range(lo, hi + 1)]


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path), map_size_bytes=64 << 20)
    yield s
    s.close()


def _reopen(store: Store, tmp_path) -> Store:
    store.close()
    return Store(str(tmp_path), map_size_bytes=64 << 20)


def test_empty_store_loads_nothing(store):
    loaded = store.load()
    assert loaded.hard_state is None
    assert loaded.snapshot is None
    assert loaded.members is None
    assert loaded.entries == []


def test_save_then_reload_after_reopen(store, tmp_path):
    store.save(entries=_entries(1, 5), hard_state=StoredHardState(3, "n2", 4), members=["a", "b"])
    store = _reopen(store, tmp_path)
    loaded = store.load()
    assert loaded.hard_state == StoredHardState(3, "n2", 4)
    assert loaded.members == ("a", "b")
    assert loaded.entries == _entries(1, 5)
    store.close()


def test_new_entries_replace_the_conflicting_suffix(store):
    store.save(entries=_entries(1, 10, term=1))
    store.save(entries=_entries(6, 7, term=2))
    loaded = store.load().entries
    assert [e.index for e in loaded] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.term for e in loaded] == [1] * 5 + [2, 2]


def test_snapshot_in_ready_drops_log_up_to_its_index(store):
    store.save(entries=_entries(1, 10))
    snap = StoredSnapshot(7, 1, ("a", "b", "c"), b"state" * 100)
    store.save(snapshot=snap, entries=_entries(11, 12))
    loaded = store.load()
    assert loaded.snapshot == snap
    assert [e.index for e in loaded.entries] == [8, 9, 10, 11, 12]
    assert store.log_bounds() == (8, 12)


def test_snapshot_past_the_log_drops_it_all(store):
    store.save(entries=_entries(1, 3))
    store.save(snapshot=StoredSnapshot(50, 4, ("a",), b"x"))
    assert store.load().entries == []
    assert store.log_bounds() is None


def test_save_snapshot_compacts(store):
    store.save(entries=_entries(1, 20))
    store.save_snapshot(StoredSnapshot(15, 1, ("a",), b"q"))
    assert store.log_bounds() == (16, 20)
    assert store.load().snapshot.index == 15


def test_commits_are_synced_data_pages_before_the_meta_page(store):
    # sync: fdatasync of the data pages on every commit, before the meta page is written;
    # metasync: the meta page synced too. Without both, a power cut can leave a meta page
    # that points at pages that never reached the disk (store.py docstring).
    flags = store._env.flags()
    assert flags["sync"] is True
    assert flags["metasync"] is True
    assert flags["map_async"] is False


def test_each_save_is_one_synced_commit_and_there_is_no_unsynced_one(store, tmp_path):
    before = store.syncs
    store.save(entries=_entries(1, 100), hard_state=StoredHardState(1, None, 0))
    assert store.syncs == before + 1
    store.save(hard_state=StoredHardState(1, None, 50))
    assert store.syncs == before + 2
    with pytest.raises(TypeError):
        store.save(hard_state=StoredHardState(1, None, 60), durable=False)  # type: ignore[call-arg]
    store = _reopen(store, tmp_path)
    assert store.load().hard_state == StoredHardState(1, None, 50)
    store.close()


def test_a_second_store_on_the_same_data_dir_is_refused_until_the_first_closes(store, tmp_path):
    with pytest.raises(DataDirLocked, match=f"in use by process {os.getpid()}"):
        Store(str(tmp_path), map_size_bytes=64 << 20)
    store.save(entries=_entries(1, 2))  # the refused open touched nothing
    store.close()
    again = Store(str(tmp_path), map_size_bytes=64 << 20)
    assert [e.index for e in again.load().entries] == [1, 2]
    again.close()


def _overwrite_raw(tmp_path, db_name: bytes, key: bytes, value: bytes) -> None:
    env = lmdb.open(str(tmp_path / "raft.lmdb"), max_dbs=4, map_size=64 << 20)
    db = env.open_db(db_name)
    with env.begin(write=True) as txn:
        txn.put(key, value, db=db)
    env.close()


def test_flipped_bit_in_a_log_record_names_its_index(store, tmp_path):
    store.save(entries=_entries(1, 9))
    key, value = encode_entry(6, 1, 0, b"d6")
    store.close()
    corrupted = value[:-1] + bytes([value[-1] ^ 0x01])
    _overwrite_raw(tmp_path, b"log", key, corrupted)
    store = Store(str(tmp_path), map_size_bytes=64 << 20)
    with pytest.raises(CorruptRecord, match="index 6") as info:
        store.load()
    assert info.value.index == 6
    store.close()


def test_record_moved_to_another_key_is_caught(store, tmp_path):
    store.save(entries=_entries(1, 3))
    _, value_of_2 = encode_entry(2, 1, 0, b"d2")
    key_of_3, _ = encode_entry(3, 1, 0, b"d3")
    store.close()
    _overwrite_raw(tmp_path, b"log", key_of_3, value_of_2)
    store = Store(str(tmp_path), map_size_bytes=64 << 20)
    with pytest.raises(CorruptRecord) as info:
        store.load()
    assert info.value.index == 3
    store.close()


@pytest.mark.parametrize(
    ("first_save", "db_name", "key", "garbage", "needle"),
    [
        ({"hard_state": StoredHardState(2, "a", 1)}, b"meta", b"hard_state",
         b"\x00\x00\x00\x00garbage", "hard_state"),
        ({"snapshot": StoredSnapshot(3, 1, ("a",), b"good data")}, b"snapshot", b"data",
         b"bad data!", "snapshot"),
    ],
)
def test_corrupt_meta_and_snapshot_records_are_refused(
        store, tmp_path, first_save, db_name, key, garbage, needle):
    store.save(**first_save)
    store.close()
    _overwrite_raw(tmp_path, db_name, key, garbage)
    store = Store(str(tmp_path), map_size_bytes=64 << 20)
    with pytest.raises(CorruptRecord, match=needle):
        store.load()
    store.close()


def test_snapshot_keeps_learners_and_contexts(store):
    from dqueue.node.codec import core_snapshot, stored_snapshot
    snap = StoredSnapshot(7, 2, ("n1", "n2"), b"state", ("n3",), (("n3", b'{"a":1}'),))
    store.save(snapshot=snap)
    loaded = store.load().snapshot
    assert loaded == snap
    assert stored_snapshot(core_snapshot(loaded)) == snap
    assert core_snapshot(loaded).meta.membership.learners == ("n3",)


def test_snapshot_meta_of_older_stores_reads_as_voters_only(store):
    import zlib
    with store._env.begin(write=True) as txn:
        store._put_snapshot(txn, StoredSnapshot(3, 1, ("a",), b"x"))
        store._put_meta(txn, b"snapshot_meta", [3, 1, ["a", "b"], zlib.crc32(b"x")])
    loaded = store.load().snapshot
    assert loaded == StoredSnapshot(3, 1, ("a", "b"), b"x", (), ())
