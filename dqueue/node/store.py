"""The LMDB store of one node: Raft log, hard state, membership and the latest snapshot.

One LMDB environment under the data directory holds three named databases:

- ``log``: big-endian ``u64`` index -> record. A record is a 4-byte big-endian CRC32 followed by
  msgpack ``[term, entry_type, data]``; the CRC covers the key and the msgpack bytes, so a record
  moved to the wrong key is caught as well as a flipped bit.
- ``meta``: ``hard_state`` (``[term, vote, commit]``), ``members`` (list of ids),
  ``snapshot_meta`` (``[index, term, members, data_crc]``) and, while a repaired log catches
  up, ``catch_up_index``, each CRC-framed the same way.
- ``snapshot``: ``data`` -> the bytes of the latest snapshot of the queue state.

Every change the node makes for one Raft ``Ready`` goes through ``save`` in one write
transaction, synced before ``save`` returns: what a message promises is on disk before it is sent.
The store knows nothing of the Raft core's classes; the loop converts.
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

_INDEX = struct.Struct(">Q")
_CRC = struct.Struct(">I")
_KEY_HARD_STATE = b"hard_state"
_KEY_MEMBERS = b"members"
_KEY_SNAPSHOT_META = b"snapshot_meta"
_KEY_SNAPSHOT_DATA = b"data"
_KEY_CATCH_UP = b"catch_up_index"

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
    """The latest snapshot (paper section 7): last included index and term, members, data."""

    index: int
    term: int
    members: tuple[str, ...]
    data: bytes


@dataclass(frozen=True)
class LoadedState:
    """Everything a restarting node reads back, checksums verified."""

    hard_state: StoredHardState | None
    members: tuple[str, ...] | None
    snapshot: StoredSnapshot | None
    entries: list[StoredEntry]
    catch_up_index: int = 0


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
        self.path = os.path.join(data_dir, "raft.lmdb")
        os.makedirs(self.path, exist_ok=True)
        # LMDB's own sync on commit is off: ``save`` syncs explicitly (env.sync) when what it
        # wrote must be durable before messages leave, and skips the fsync for a write that
        # only moves the commit index (losing it in a crash is safe: a leader re-commits).
        # A killed process loses nothing either way: the pages are in the OS page cache.
        self._env = lmdb.open(
            self.path, map_size=map_size_bytes, max_dbs=4, subdir=True,
            sync=False, metasync=True, lock=True, readahead=False, meminit=False,
        )
        self._log = self._env.open_db(b"log")
        self._meta = self._env.open_db(b"meta")
        self._snap = self._env.open_db(b"snapshot")
        self.syncs = 0

    def close(self) -> None:
        """Close the environment."""
        self._env.close()

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
                index, term, snap_members, data_crc = snap_meta
                data = txn.get(_KEY_SNAPSHOT_DATA, db=self._snap) or b""
                if zlib.crc32(data) != data_crc:
                    raise CorruptRecord("snapshot", None, self.path)
                snapshot = StoredSnapshot(index, term, tuple(snap_members), bytes(data))
            entries = []
            with txn.cursor(db=self._log) as cursor:
                for key, value in cursor:
                    entries.append(self._decode_entry(key, value))
            catch_up_index = self._get_meta(txn, _KEY_CATCH_UP) or 0
        return LoadedState(
            hard_state=StoredHardState(*hard) if hard is not None else None,
            members=tuple(members) if members is not None else None,
            snapshot=snapshot,
            entries=entries,
            catch_up_index=catch_up_index,
        )

    def repair(self) -> int:
        """Wipe the log and the snapshot, keeping term, vote and members; return the catch-up
        index (one synced transaction).

        For a store whose log records or snapshot bytes fail their checksums. The catch-up
        index is the last index the log had (keys are readable when values are not): the Raft
        core neither votes nor campaigns until its log reaches it again, since it may have
        acknowledged entries up to there (docs/raft.md, "Repair").

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
            if hard is not None:
                term, vote, _commit = hard
                self._put_meta(txn, _KEY_HARD_STATE, [term, vote, 0])
            self._put_meta(txn, _KEY_CATCH_UP, catch_up_index)
        self._sync()
        return catch_up_index

    def clear_catch_up(self) -> None:
        """The repaired log is back up to its catch-up index: forget the index (synced)."""
        with self._env.begin(write=True) as txn:
            txn.delete(_KEY_CATCH_UP, db=self._meta)
        self._sync()

    def save(
        self,
        *,
        entries: Sequence[EntryLike] = (),
        hard_state: StoredHardState | None = None,
        snapshot: StoredSnapshot | None = None,
        members: Iterable[str] | None = None,
        durable: bool = True,
    ) -> None:
        """Persist one Ready in one write transaction, synced to disk when ``durable``.

        Order inside the transaction (docs/internals.md section 1): the snapshot first (store it,
        drop the log up to its index), then the entries (drop any stored entry at or after the
        first new index: a conflicting suffix, paper section 5.3), then the hard state.

        Args:
            durable: fsync before returning. Pass False only for a write whose loss in a power
                failure is safe (a hard state that only advanced the commit index); it is made
                durable by the next durable save.
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
        if durable:
            self._sync()

    def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        """Store a snapshot the node took itself and compact the log behind it (one transaction).

        Only entries up to ``snapshot.index`` are dropped: they are applied, so committed.
        """
        with self._env.begin(write=True) as txn:
            self._put_snapshot(txn, snapshot)
            self._delete_log(txn, lo=None, hi=snapshot.index)
        self._sync()

    def _sync(self) -> None:
        self._env.sync(True)
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
            [snapshot.index, snapshot.term, list(snapshot.members), zlib.crc32(snapshot.data)],
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
