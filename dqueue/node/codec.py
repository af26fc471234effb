"""Conversions at the node's edges: log entry data, and the store's records to the core's types.

A normal log entry carries a batch: a msgpack array of items ``[rid, cmd]`` or
``[rid, cmd, client_id, seq, first_unanswered]``, each the request id of the client request
that proposed it (empty for the node's own ``tick`` and ``configure`` commands), the plain
command, stamped with ``now_ms`` by the leader (``dqueue/node/proposals.py`` builds the
batches), and, for client requests, their client session (``dqueue/queue/sessions.py``: the
state machine applies a session's command once and answers its repeats). The request id lets a
waiting request be answered only by the entry that really carries it (docs/internals.md
section 3). Items without a session (the node's own, and every item of a log written before
sessions) apply as before. Logs written before batching hold one ``[rid, cmd]`` per entry;
they decode as batches of one.
"""

from __future__ import annotations

from typing import Any

import msgpack

from dqueue.node.store import LoadedState, StoredHardState, StoredSnapshot
from dqueue.queue import command_from_plain
from dqueue.queue.sessions import ClientSession, is_session
from dqueue.raft.types import (
    Entry,
    EntryType,
    HardState,
    Membership,
    PersistedState,
    Snapshot,
    SnapshotMeta,
    snapshot_checksum,
)


def encode_item(rid: str, cmd: dict[str, Any], session: ClientSession | None = None) -> bytes:
    """The msgpack bytes of one batch item: the request id, the stamped plain command and,
    when given, the client session's three fields."""
    if session is None:
        return msgpack.packb([rid, cmd], use_bin_type=True)
    return msgpack.packb([rid, cmd, *session], use_bin_type=True)


def join_items(items: list[bytes]) -> bytes:
    """The data of a batch entry: a msgpack array header followed by the encoded items."""
    n = len(items)
    if n < 16:
        header = bytes((0x90 | n,))
    elif n < 1 << 16:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return header + b"".join(items)


def decode_entry_items(
        data: bytes) -> tuple[list[str], list[Any], list[ClientSession | None]]:
    """The request ids, plain commands and client sessions of a normal log entry's items.

    A batch entry is a msgpack array of ``[rid, cmd]`` items (no session: None) and
    ``[rid, cmd, client_id, seq, first_unanswered]`` items; an entry written before batching
    (msgpack ``[rid, cmd]`` itself) decodes as a batch of one.

    Raises:
        ValueError: the data is not an entry a node wrote (never expected in a healthy log).
    """
    try:
        obj = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise ValueError(f"undecodable entry data: {exc.__class__.__name__}") from None
    if not isinstance(obj, list) or not obj:
        raise ValueError("entry data is not a list of items")
    if isinstance(obj[0], str):
        obj = [obj]  # the single-command layout of older logs
    rids: list[str] = []
    cmds: list[Any] = []
    sessions: list[ClientSession | None] = []
    for item in obj:
        if not isinstance(item, list) or not isinstance(item[0] if item else None, str):
            raise ValueError("entry item without a request id")
        if len(item) == 2:
            sessions.append(None)
        elif len(item) == 5 and is_session(item[2:]):
            sessions.append(ClientSession(item[2], item[3], item[4]))
        else:
            raise ValueError("entry item is neither [rid, cmd] nor [rid, cmd, session]")
        rids.append(item[0])
        cmds.append(item[1])
    return rids, cmds, sessions


def entry_is_applicable(data: bytes) -> bool:
    """Whether the data of a normal entry decodes into a batch of valid commands: the
    leader's check of an entry a follower forwarded (the core's ``proposal_validator``).

    Every command is checked in full (``command_from_plain``, not ``command_from_log``, which
    trusts the leader's own validation). Once committed, an entry
    that fails to apply stops every member (``apply_failed.py``), so it must never be
    appended. Empty data applies as nothing, like a no-op.
    """
    if not data:
        return True
    try:
        _, cmds, _ = decode_entry_items(data)
        for cmd in cmds:
            command_from_plain(cmd)
    except ValueError:  # InvalidCommand is a ValueError
        return False
    return True


def persisted_state(loaded: LoadedState) -> PersistedState | None:
    """Map what the store loaded to the core's ``PersistedState`` (None for a new member)."""
    if (loaded.hard_state is None and loaded.snapshot is None and not loaded.entries
            and not loaded.catch_up_index):
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
        catch_up_index=loaded.catch_up_index,
        catch_up_term=loaded.catch_up_term,
    )


def core_snapshot(stored: StoredSnapshot) -> Snapshot:
    """The core's ``Snapshot`` of a stored one (its checksum computed from the data).

    The configuration is the stored one: voters, learners and contexts (a snapshot stored
    before membership changes has voters only, which is what its configuration was).
    """
    membership = Membership(voters=tuple(stored.members), learners=tuple(stored.learners),
                            contexts=tuple(sorted(stored.contexts)))
    meta = SnapshotMeta(stored.index, stored.term, membership, snapshot_checksum(stored.data))
    return Snapshot(meta, stored.data)


def stored_hard_state(hard: HardState | None) -> StoredHardState | None:
    """The store's record of the core's hard state (None for None)."""
    return None if hard is None else StoredHardState(hard.term, hard.vote, hard.commit)


def stored_snapshot(snapshot: Snapshot) -> StoredSnapshot:
    """The store's record of a core ``Snapshot``: its data and its whole configuration."""
    return stored_snapshot_of(snapshot.meta.index, snapshot.meta.term, snapshot.meta.membership,
                              snapshot.data)


def stored_snapshot_of(index: int, term: int, membership: Membership,
                       data: bytes) -> StoredSnapshot:
    """The store's record of a snapshot at ``index`` taken under ``membership``."""
    return StoredSnapshot(index, term, tuple(membership.voters), data,
                          tuple(membership.learners), tuple(membership.contexts))
