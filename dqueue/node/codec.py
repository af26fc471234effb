"""Conversions at the node's edges: log entry data, and the store's records to the core's types.

A normal log entry carries msgpack ``[rid, cmd]``: the request id of the client request that
proposed it (empty for the node's own ``tick`` commands) and the plain command, stamped with
``now_ms`` by the leader. The request id lets a waiting request be answered only by the entry
that really carries it (docs/internals.md section 3).
"""

from __future__ import annotations

from typing import Any

import msgpack

from dqueue.node.store import LoadedState, StoredSnapshot
from dqueue.raft.types import (
    Entry,
    EntryType,
    HardState,
    PersistedState,
    Snapshot,
    SnapshotMeta,
)


def encode_entry_data(rid: str, cmd: dict[str, Any]) -> bytes:
    """Return the data of a normal log entry."""
    return msgpack.packb([rid, cmd], use_bin_type=True)


def decode_entry_data(data: bytes) -> tuple[str, Any]:
    """Return ``(rid, plain command)`` of a normal log entry.

    Raises:
        ValueError: the data is not an entry this node wrote (never expected in a healthy log).
    """
    try:
        rid, cmd = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise ValueError(f"undecodable entry data: {exc.__class__.__name__}") from None
    if not isinstance(rid, str):
        raise ValueError("entry data without a request id")
    return rid, cmd


def persisted_state(loaded: LoadedState) -> PersistedState | None:
    """Map what the store loaded to the core's ``PersistedState`` (None for a new member)."""
    if loaded.hard_state is None and loaded.snapshot is None and not loaded.entries:
        return None
    hard = loaded.hard_state
    snapshot = None
    if loaded.snapshot is not None:
        snapshot = core_snapshot(loaded.snapshot)
    entries = [Entry(e.index, e.term, EntryType(e.type), e.data) for e in loaded.entries]
    if snapshot is not None:
        # The store drops the log up to a snapshot in the same transaction that writes it;
        # this only guards against a record left behind by an older layout.
        entries = [e for e in entries if e.index > snapshot.meta.index]
    return PersistedState(
        hard_state=HardState(hard.term, hard.vote, hard.commit) if hard else HardState(),
        snapshot=snapshot,
        entries=entries,
    )


def core_snapshot(stored: StoredSnapshot) -> Snapshot:
    """The core's ``Snapshot`` of a stored one."""
    return Snapshot(SnapshotMeta(stored.index, stored.term, tuple(stored.members)), stored.data)


def stored_snapshot(snapshot: Snapshot) -> StoredSnapshot:
    """The store's record of a core ``Snapshot``."""
    meta = snapshot.meta
    return StoredSnapshot(meta.index, meta.term, tuple(meta.members), snapshot.data)
