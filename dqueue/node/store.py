"""The LMDB store of one node: Raft log, hard state, membership and the latest snapshot.

One LMDB environment under the data directory holds three named databases:

- ``log``: big-endian ``u64`` index -> record. A record is a 4-byte big-endian CRC32 followed by
  msgpack ``[term, entry_type, data]``; the CRC covers the key and the msgpack bytes, so a record
  moved to the wrong key is caught as well as a flipped bit.
- ``meta``: ``hard_state`` (``[term, vote, commit]``), ``members`` (list of ids: the bootstrap
  voters), ``snapshot_meta`` (``[index, term, voters, data_crc,
  learners, contexts]``, contexts a list of ``[id, bytes]``: the configuration at the
  snapshot's index; stores written before membership changes hold the first four, read as
  voters only) and, while a repaired log catches
  up, ``catch_up_index`` and ``catch_up_term`` (the term at the repair; stores repaired before
  it was recorded have only the index), each CRC-framed the same way.
- ``snapshot``: ``data`` -> the bytes of the latest snapshot of the queue state.

Every change the node makes for one Raft ``Ready`` goes through ``save`` in one write
transaction, durable before ``save`` returns: what a message promises is on disk before it is
sent. The store knows nothing of the Raft core's classes; the loop converts. The store holds the
data directory's lock (``datadir_lock.py``) from open to close.

Durability across a power cut. LMDB is copy-on-write with two meta pages: a commit writes the
new pages of its B-trees to free pages, then the meta page that points at the new roots; on
open, LMDB trusts the meta page with the higher transaction id. That is safe only if the data
pages are on the disk before the meta page that points at them. The environment is opened with
synced commits (``sync=True, metasync=True``): each commit calls ``fdatasync`` after writing its
data pages, and only then writes the meta page and syncs it again. A power cut before the meta
page lands leaves the previous meta page, whose pages are intact (a commit reuses only pages
that no meta page still on the disk can reach: those freed two or more commits ago, and LMDB
keeps two). The store used to open with ``sync=False`` and call ``env.sync()`` after the
commit: one ``fdatasync`` then flushed the data pages and the new meta page in no order, and a
cut in the middle could leave a meta page pointing at recycled pages (an older vote, or older
entries at indexes the member had acknowledged), which the CRCs do not catch: each record is
a valid old record.

There is no non-durable write. LMDB's ``sync`` flag is set per environment (py-lmdb has no
per-transaction form), and a second handle on the same file shares the meta pages. A commit
that skipped its sync, whichever way (a second handle, the C API's per-transaction
``MDB_NOSYNC``, the flag turned off for a moment), leaves
its meta page in the page cache unordered with its data pages; the next synced commit's first
``fdatasync`` flushes both in no order, and a power cut in that window can leave on the disk a
meta page that outranks the last synced one and points at pages that never landed: the state
of every commit that returned before is then unreachable. The one write whose loss is harmless,
a hard state that only moves the commit index (volatile in Raft, figure 2), is not handed to
the store at all: the loop keeps it in memory and it rides with the next write
(``ready_writer.py``, ``ReadyWriter.unsaved_hard``). A write transaction that changed nothing
commits and syncs nothing (everything before it was already synced).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import lmdb
import msgpack

from dqueue.node.datadir_lock import DataDirLock

_INDEX = struct.Struct(">Q")
_CRC = struct.Struct(">I")
_KEY_HARD_STATE = b"hard_state"
_KEY_MEMBERS = b"members"
_KEY_SNAPSHOT_META = b"snapshot_meta"
_KEY_SNAPSHOT_DATA = b"data"
_KEY_CATCH_UP = b"catch_up_index"
_KEY_CATCH_UP_TERM = b"catch_up_term"

# LMDB reserves address space, not disk: the file grows only as data is written. 8 GiB leaves
# room for a snapshot plus snapshot_entries of log at any sane task size.
DEFAULT_MAP_SIZE_BYTES = 8 << 30


class CorruptRecord(Exception):
    """A stored record failed its checksum; the node must not serve from this store.

    Attributes:
        what: ``"log"`` or the meta key that failed.
        index: the log index of the bad record (None for meta records).
    """

    def __init__(self, what: str, index: int | None, path: str) -> None:
        where = f"log record at index {index}" if index is not None else f"{what} record"
        if what in ("log", "snapshot"):
            advice = ("Start this node once with --repair to wipe its log and rejoin it from "
                      "its peers (never delete the data directory: the node would forget its "
                      "vote; docs/operations.md, \"A corrupt store\")")
        else:
            advice = ("--repair cannot keep this record; replace the node as docs/operations.md "
                      "says (\"Replacing a dead node\")")
        super().__init__(
            f"corrupt {where} in {path}: checksum mismatch; refusing to start. {advice}")
        self.what = what
        self.index = index


class EntryLike(Protocol):
    """Anything with the fields of a log entry (the core's ``Entry`` or ``StoredEntry``)."""

    index: int
    term: int
    type: int
    data: bytes


@dataclass(frozen=True)
class StoredEntry:
    """One log entry as stored; the Raft core's ``Entry`` has the same fields and may be
    passed to ``Store.save`` directly."""

    index: int
    term: int
    type: int
    data: bytes


@dataclass(frozen=True)
class StoredHardState:
    """Raft persistent state (paper section 5.1, Figure 2): term, vote, commit index."""

    term: int
    vote: str | None
    commit: int


@dataclass(frozen=True)
class StoredSnapshot:
    """The latest snapshot (paper section 7): last included index and term, the configuration
    at that index (voters, learners, each member's context bytes), data.

    A snapshot stored before membership changes has voters only (no learners, no contexts).
    """

    index: int
    term: int
    members: tuple[str, ...]
    data: bytes
    learners: tuple[str, ...] = ()
    contexts: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class LoadedState:
    """Everything a restarting node reads back, checksums verified."""

    hard_state: StoredHardState | None
    members: tuple[str, ...] | None
    snapshot: StoredSnapshot | None
    entries: list[StoredEntry]
    catch_up_index: int = 0
    # The term at the repair, or None when not recorded (a repair by an older version).
    catch_up_term: int | None = None


def _frame(key: bytes, payload: bytes) -> bytes:
    return _CRC.pack(zlib.crc32(payload, zlib.crc32(key))) + payload


def _unframe(key: bytes, value: bytes) -> bytes | None:
    """Return the payload of a CRC-framed value, or None when the checksum fails."""
    if len(value) < _CRC.size:
        return None
    (crc,) = _CRC.unpack_from(value)
    payload = value[_CRC.size:]
    if zlib.crc32(payload, zlib.crc32(key)) != crc:
        return None
    return payload


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_entry(index: int, term: int, entry_type: int, data: bytes) -> tuple[bytes, bytes]:
    """Return the (key, value) of one log record."""
    key = _INDEX.pack(index)
    return key, _frame(key, msgpack.packb([term, entry_type, data], use_bin_type=True))


class Store:
    """The LMDB environment of one node.

    Args:
        data_dir: the node's data directory; the environment lives in ``data_dir/raft.lmdb``.
        map_size_bytes: LMDB map size (address space reserved, not disk used).
    """

    def __init__(self, data_dir: str, map_size_bytes: int = DEFAULT_MAP_SIZE_BYTES) -> None:
        self._lock = DataDirLock(data_dir)  # raises DataDirLocked: before any LMDB file is touched
        try:
            self.path = os.path.join(data_dir, "raft.lmdb")
            os.makedirs(self.path, exist_ok=True)
            # Synced commits: the data pages are on disk before the meta page that points at
            # them (module docstring). A killed process loses nothing either way (page cache);
            # a power cut loses no commit that returned.
            self._env = lmdb.open(
                self.path, map_size=map_size_bytes, max_dbs=4, subdir=True,
                sync=True, metasync=True, lock=True, readahead=False, meminit=False,
            )
            # A new file's directory entry is not covered by the file's fdatasync: sync the
            # directories once, so that a power cut after the first commit cannot lose the
            # environment itself (and with it the vote).
            _fsync_dir(self.path)
            _fsync_dir(data_dir)
            self._log = self._env.open_db(b"log")
            self._meta = self._env.open_db(b"meta")
            self._snap = self._env.open_db(b"snapshot")
        except BaseException:
            self._lock.release()
            raise
        self.syncs = 0  # synced write transactions committed

    def close(self) -> None:
        """Close the environment and release the data directory's lock."""
        self._env.close()
        self._lock.release()

    def load(self) -> LoadedState:
        """Read back hard state, members, the latest snapshot and the log after it.

        Raises:
            CorruptRecord: a record fails its checksum (naming the log index when it is one).
        """
        with self._env.begin() as txn:
            hard = self._get_meta(txn, _KEY_HARD_STATE)
            members = self._get_meta(txn, _KEY_MEMBERS)
            snap_meta = self._get_meta(txn, _KEY_SNAPSHOT_META)
            snapshot = None
            if snap_meta is not None:
                index, term, snap_members, data_crc, *conf = snap_meta
                data = txn.get(_KEY_SNAPSHOT_DATA, db=self._snap) or b""
                if zlib.crc32(data) != data_crc:
                    raise CorruptRecord("snapshot", None, self.path)
                learners, contexts = conf if len(conf) == 2 else ((), ())
                snapshot = StoredSnapshot(index, term, tuple(snap_members), bytes(data),
                                          tuple(learners),
                                          tuple((str(k), bytes(v)) for k, v in contexts))
            entries = []
            with txn.cursor(db=self._log) as cursor:
                for key, value in cursor:
                    entries.append(self._decode_entry(key, value))
            catch_up_index = self._get_meta(txn, _KEY_CATCH_UP) or 0
            catch_up_term = self._get_meta(txn, _KEY_CATCH_UP_TERM) if catch_up_index else None
        return LoadedState(
            hard_state=StoredHardState(*hard) if hard is not None else None,
            members=tuple(members) if members is not None else None,
            snapshot=snapshot,
            entries=entries,
            catch_up_index=catch_up_index,
            catch_up_term=catch_up_term,
        )

    def repair(self) -> int:
        """Wipe the log and the snapshot, keeping term, vote and members; return the catch-up
        index (one synced transaction).

        For a store whose log records or snapshot bytes fail their checksums. The catch-up
        index is the last index the log had (keys are readable when values are not), the
        catch-up term the stored term: the Raft core neither votes nor campaigns until its log
        reaches that index again or holds a committed entry of a later term, since it may have
        acknowledged entries up to there, of terms up to that one (docs/raft.md, "Repair").

        Raises:
            CorruptRecord: the hard state, members or snapshot meta record is corrupt too:
                then the vote or the old last index is unknown and a repair is not safe.
        """
        with self._env.begin(write=True) as txn:
            hard = self._get_meta(txn, _KEY_HARD_STATE)
            self._get_meta(txn, _KEY_MEMBERS)  # must be readable: the members stay
            snap_meta = self._get_meta(txn, _KEY_SNAPSHOT_META)
            catch_up_index = self._get_meta(txn, _KEY_CATCH_UP) or 0
            with txn.cursor(db=self._log) as cursor:
                if cursor.last():
                    catch_up_index = max(catch_up_index, _INDEX.unpack(cursor.key())[0])
            if snap_meta is not None:
                catch_up_index = max(catch_up_index, snap_meta[0])
            self._delete_log(txn, lo=None, hi=None)
            txn.delete(_KEY_SNAPSHOT_DATA, db=self._snap)
            txn.delete(_KEY_SNAPSHOT_META, db=self._meta)
            term = 0
            if hard is not None:
                term, vote, _commit = hard
                self._put_meta(txn, _KEY_HARD_STATE, [term, vote, 0])
            self._put_meta(txn, _KEY_CATCH_UP, catch_up_index)
            # The term only grows, so after a second repair this one covers the first.
            self._put_meta(txn, _KEY_CATCH_UP_TERM, term)
        self.syncs += 1
        return catch_up_index

    def clear_catch_up(self) -> None:
        """The repaired member may vote again: forget the catch-up index and term (synced)."""
        with self._env.begin(write=True) as txn:
            txn.delete(_KEY_CATCH_UP, db=self._meta)
            txn.delete(_KEY_CATCH_UP_TERM, db=self._meta)
        self.syncs += 1

    def save(
        self,
        *,
        entries: Sequence[EntryLike] = (),
        hard_state: StoredHardState | None = None,
        snapshot: StoredSnapshot | None = None,
        members: Iterable[str] | None = None,
    ) -> None:
        """Persist one Ready in one synced write transaction: on disk when this returns.

        Order inside the transaction (docs/internals.md section 1): the snapshot first (store it,
        drop the log up to its index), then the entries (drop any stored entry at or after the
        first new index: a conflicting suffix, paper section 5.3), then the hard state. All of
        it becomes visible, after a crash or a power cut, together or not at all.
        """
        with self._env.begin(write=True) as txn:
            if snapshot is not None:
                self._put_snapshot(txn, snapshot)
                self._delete_log(txn, lo=None, hi=snapshot.index)
            if entries:
                self._delete_log(txn, lo=entries[0].index, hi=None)
                put = txn.put
                log_db = self._log
                for entry in entries:
                    key, value = encode_entry(entry.index, entry.term, int(entry.type), entry.data)
                    put(key, value, db=log_db, append=True)
            if hard_state is not None:
                self._put_meta(
                    txn, _KEY_HARD_STATE, [hard_state.term, hard_state.vote, hard_state.commit]
                )
            if members is not None:
                self._put_meta(txn, _KEY_MEMBERS, list(members))
        self.syncs += 1

    def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        """Store a snapshot the node took itself and compact the log behind it (one transaction).

        Only entries up to ``snapshot.index`` are dropped: they are applied, so committed. The
        snapshot bytes, its meta record and the compaction are one synced commit: after a power
        cut either the old snapshot and the whole log are there, or the new snapshot and the
        log after it (the forked child's ``.tmp`` file is only a carrier and needs no sync).
        """
        with self._env.begin(write=True) as txn:
            self._put_snapshot(txn, snapshot)
            self._delete_log(txn, lo=None, hi=snapshot.index)
        self.syncs += 1

    def log_bounds(self) -> tuple[int, int] | None:
        """Return (first index, last index) of the stored log, or None when it is empty."""
        with self._env.begin() as txn, txn.cursor(db=self._log) as cursor:
            if not cursor.first():
                return None
            first = _INDEX.unpack(cursor.key())[0]
            cursor.last()
            return first, _INDEX.unpack(cursor.key())[0]

    def size_bytes(self) -> int:
        """Bytes of the LMDB data file in use (pages times page size)."""
        info = self._env.info()
        return (info["last_pgno"] + 1) * self._env.stat()["psize"]

    def _decode_entry(self, key: bytes, value: bytes) -> StoredEntry:
        index = _INDEX.unpack(key)[0]
        payload = _unframe(bytes(key), bytes(value))
        if payload is None:
            raise CorruptRecord("log", index, self.path)
        try:
            term, entry_type, data = msgpack.unpackb(payload, raw=False)
        except Exception:  # a checksum collision on garbage: still corrupt
            raise CorruptRecord("log", index, self.path) from None
        return StoredEntry(index, term, entry_type, data)

    def _get_meta(self, txn: lmdb.Transaction, key: bytes) -> Any:
        value = txn.get(key, db=self._meta)
        if value is None:
            return None
        payload = _unframe(key, bytes(value))
        if payload is None:
            raise CorruptRecord(key.decode(), None, self.path)
        return msgpack.unpackb(payload, raw=False)

    def _put_meta(self, txn: lmdb.Transaction, key: bytes, value: Any) -> None:
        txn.put(key, _frame(key, msgpack.packb(value, use_bin_type=True)), db=self._meta)

    def _put_snapshot(self, txn: lmdb.Transaction, snapshot: StoredSnapshot) -> None:
        txn.put(_KEY_SNAPSHOT_DATA, snapshot.data, db=self._snap)
        self._put_meta(
            txn, _KEY_SNAPSHOT_META,
            [snapshot.index, snapshot.term, list(snapshot.members), zlib.crc32(snapshot.data),
             list(snapshot.learners), [[k, v] for k, v in snapshot.contexts]],
        )

    def _delete_log(self, txn: lmdb.Transaction, lo: int | None, hi: int | None) -> None:
        """Delete log records with lo <= index <= hi (None: unbounded on that side)."""
        with txn.cursor(db=self._log) as cursor:
            found = cursor.set_range(_INDEX.pack(lo)) if lo is not None else cursor.first()
            while found:
                key = cursor.key()
                if not key or (hi is not None and _INDEX.unpack(key)[0] > hi):
                    break
                found = cursor.delete()  # deletes and moves to the next record
