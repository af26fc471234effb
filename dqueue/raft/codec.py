"""Raft messages to and from plain values (lists, ints, str, bytes, bool, None) for the wire.

The node runtime packs the plain form with msgpack; this module knows nothing of msgpack.
``message_from_plain`` checks every field before the core sees it, because its input comes
from the network: any value at all either becomes a ``Message`` within the bounds of
``dqueue/raft/types.py`` or raises ``ValueError`` (never anything else).
"""

from __future__ import annotations

from typing import Any

from dqueue.raft.membership import decode_conf_entry
from dqueue.raft.types import (
    MAX_CONTEXT_BYTES,
    MAX_ENTRIES_PER_MESSAGE,
    MAX_ID_CHARS,
    MAX_MEMBERS,
    MAX_MESSAGE_DATA_BYTES,
    MAX_RAFT_INT,
    Entry,
    EntryType,
    Membership,
    Message,
    MessageType,
    SnapshotMeta,
)

_FIELDS = 15
_MAX_CHECKSUM = (1 << 32) - 1
_ENTRY_TYPES = {int(t): t for t in EntryType}
_MESSAGE_TYPES = {int(t): t for t in MessageType}
_TYPED = (list, tuple)


def message_to_plain(msg: Message) -> list[Any]:
    """Return ``msg`` as a flat list of plain values (field order is the wire format)."""
    meta = msg.snapshot_meta
    return [
        int(msg.type), msg.to, msg.sender, msg.term, msg.log_term, msg.index,
        [[e.index, e.term, int(e.type), e.data] for e in msg.entries],
        msg.commit, msg.reject, msg.reject_hint, msg.context,
        None if meta is None else _meta_to_plain(meta),
        msg.offset, msg.data, msg.done,
    ]


def _meta_to_plain(meta: SnapshotMeta) -> list[Any]:
    m = meta.membership
    return [meta.index, meta.term, list(m.voters), meta.checksum, list(m.learners),
            [[k, v] for k, v in m.contexts]]


def _int(value: Any, name: str, high: int = MAX_RAFT_INT) -> int:
    # type() is not int: refuses bool (a subclass of int) and any int subclass.
    if type(value) is not int or not 0 <= value <= high:
        raise ValueError(f"{name}: expected an int from 0 to {high}")
    return value


def _str(value: Any, name: str) -> str:
    if type(value) is not str or not 0 < len(value) <= MAX_ID_CHARS:
        raise ValueError(f"{name}: expected a str of 1 to {MAX_ID_CHARS} characters")
    return value


def _bytes(value: Any, name: str, high: int) -> bytes:
    if type(value) is not bytes or len(value) > high:
        raise ValueError(f"{name}: expected bytes, at most {high}")
    return value


def _bool(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise ValueError(f"{name}: expected a bool")
    return value


def _entry(value: Any) -> Entry:
    if type(value) not in _TYPED or len(value) != 4:
        raise ValueError("entries: each entry is [index, term, type, data]")
    index, term, kind, data = value
    entry_type = _ENTRY_TYPES.get(kind) if type(kind) is int else None
    if entry_type is None:
        raise ValueError("entries.type: unknown entry type")
    data = _bytes(data, "entries.data", MAX_MESSAGE_DATA_BYTES)
    if entry_type is EntryType.CONF_CHANGE:
        # A configuration every member will act on once appended (thesis 4.1): checked whole.
        try:
            decode_conf_entry(data)
        except ValueError as exc:
            raise ValueError(f"entries.data: bad membership change: {exc}") from None
    return Entry(_int(index, "entries.index"), _int(term, "entries.term"), entry_type, data)


def _entries(value: Any, msg_type: MessageType, term: int, prev_index: int,
             prev_term: int) -> tuple[Entry, ...]:
    if type(value) not in _TYPED or len(value) > MAX_ENTRIES_PER_MESSAGE:
        raise ValueError(f"entries: expected a list of at most {MAX_ENTRIES_PER_MESSAGE}")
    parsed = tuple(_entry(e) for e in value)
    if sum(len(e.data) for e in parsed) > MAX_MESSAGE_DATA_BYTES:
        raise ValueError(f"entries: more than {MAX_MESSAGE_DATA_BYTES} data bytes")
    if msg_type is MessageType.APPEND_ENTRIES:
        # The shape every leader sends (Raft figure 2): entries follow prev_log_index
        # without a gap, their terms never decrease, start at prev_log_term or later, and
        # none is above the leader's term. The follower's log relies on it (log.append
        # refuses a gap, and a log whose terms decrease breaks Log Matching, 5.3).
        index, last_term = prev_index, prev_term
        for entry in parsed:
            if entry.index != index + 1:
                raise ValueError("entries: indexes must follow index without a gap")
            if not last_term <= entry.term <= term:
                raise ValueError("entries: terms must not decrease nor exceed the term")
            index, last_term = entry.index, entry.term
    elif len(parsed) > 1:
        # PROPOSE: the leader numbers forwarded entries itself; one per message is sent.
        raise ValueError("entries: at most one entry outside AppendEntries")
    return parsed


def _meta(value: Any) -> SnapshotMeta | None:
    if value is None:
        return None
    # Four fields from a member that knows no learners; six since membership changes.
    if type(value) not in _TYPED or len(value) not in (4, 6):
        raise ValueError("snapshot_meta: expected [index, term, voters, checksum, learners,"
                         " contexts]")
    index, term, members, checksum = value[:4]
    learners, contexts = (value[4], value[5]) if len(value) == 6 else ([], [])
    if type(members) not in _TYPED or not 0 < len(members) <= MAX_MEMBERS:
        raise ValueError(f"snapshot_meta.members: expected a list of 1 to {MAX_MEMBERS}")
    if type(learners) not in _TYPED or len(members) + len(learners) > MAX_MEMBERS:
        raise ValueError(f"snapshot_meta.learners: at most {MAX_MEMBERS} members in all")
    ids = tuple(_str(m, "snapshot_meta.members") for m in members)
    learner_ids = tuple(_str(m, "snapshot_meta.learners") for m in learners)
    if len(set(ids + learner_ids)) != len(ids) + len(learner_ids):
        raise ValueError("snapshot_meta.members: ids must be distinct")
    if type(contexts) not in _TYPED or len(contexts) > len(ids) + len(learner_ids):
        raise ValueError("snapshot_meta.contexts: expected a list, one per member at most")
    pairs = []
    for pair in contexts:
        if type(pair) not in _TYPED or len(pair) != 2:
            raise ValueError("snapshot_meta.contexts: each is [id, bytes]")
        pairs.append((_str(pair[0], "snapshot_meta.contexts"),
                      _bytes(pair[1], "snapshot_meta.contexts", MAX_CONTEXT_BYTES)))
    keys = [k for k, _ in pairs]
    if keys != sorted(set(keys)) or not set(keys) <= set(ids + learner_ids):
        raise ValueError("snapshot_meta.contexts: ids sorted, distinct and of members")
    return SnapshotMeta(_int(index, "snapshot_meta.index"), _int(term, "snapshot_meta.term"),
                        Membership(ids, learner_ids, tuple(pairs)),
                        _int(checksum, "snapshot_meta.checksum", _MAX_CHECKSUM))


def message_from_plain(obj: Any) -> Message:
    """Rebuild a Message from ``message_to_plain`` output, checking every field.

    Terms, indexes, offsets, commit and hints are ints from 0 to ``MAX_RAFT_INT``; ids are
    non-empty strings of at most ``MAX_ID_CHARS``; entries, data and context are bounded
    (``MAX_ENTRIES_PER_MESSAGE``, ``MAX_MESSAGE_DATA_BYTES``, ``MAX_CONTEXT_BYTES``); the
    entries of an AppendEntries follow its ``index``; a snapshot meta names 1 to
    ``MAX_MEMBERS`` distinct members and a 32-bit checksum.

    Raises:
        ValueError: ``obj`` is not a well-formed message; the text names the field. Nothing
            else is raised, whatever ``obj`` is.
    """
    if type(obj) not in _TYPED or len(obj) != _FIELDS:
        raise ValueError(f"message: expected a list of {_FIELDS} fields")
    (kind, to, sender, term, log_term, index, entries, commit, reject, reject_hint, context,
     meta, offset, data, done) = obj
    msg_type = _MESSAGE_TYPES.get(kind) if type(kind) is int else None
    if msg_type is None:
        raise ValueError("type: unknown message type")
    term = _int(term, "term")
    log_term = _int(log_term, "log_term")
    index = _int(index, "index")
    return Message(
        type=msg_type, to=_str(to, "to"), sender=_str(sender, "sender"),
        term=term, log_term=log_term, index=index,
        entries=_entries(entries, msg_type, term, index, log_term),
        commit=_int(commit, "commit"),
        reject=_bool(reject, "reject"), reject_hint=_int(reject_hint, "reject_hint"),
        context=_bytes(context, "context", MAX_CONTEXT_BYTES), snapshot_meta=_meta(meta),
        offset=_int(offset, "offset"), data=_bytes(data, "data", MAX_MESSAGE_DATA_BYTES),
        done=_bool(done, "done"),
    )
