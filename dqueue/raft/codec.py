"""Raft messages to and from plain values (lists, ints, str, bytes, bool, None) for the wire.

The node runtime packs the plain form with msgpack; this module knows nothing of msgpack.
``message_from_plain`` validates every field, because its input comes from the network.
"""

from __future__ import annotations

import itertools
from typing import Any

from dqueue.raft.types import Entry, EntryType, Message, MessageType, SnapshotMeta

_FIELDS = 15
_MAX_ID_CHARS = 256


def message_to_plain(msg: Message) -> list[Any]:
    """Return ``msg`` as a flat list of plain values (field order is the wire format)."""
    meta = msg.snapshot_meta
    return [
        int(msg.type), msg.to, msg.sender, msg.term, msg.log_term, msg.index,
        [[e.index, e.term, int(e.type), e.data] for e in msg.entries],
        msg.commit, msg.reject, msg.reject_hint, msg.context,
        None if meta is None else [meta.index, meta.term, list(meta.members)],
        msg.offset, msg.data, msg.done,
    ]


def _int(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name}: expected a non-negative int")
    return value


def _str(value: Any, name: str) -> str:
    if type(value) is not str or not value or len(value) > _MAX_ID_CHARS:
        raise ValueError(f"{name}: expected a non-empty str")
    return value


def _bytes(value: Any, name: str) -> bytes:
    if type(value) is not bytes:
        raise ValueError(f"{name}: expected bytes")
    return value


def _bool(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise ValueError(f"{name}: expected a bool")
    return value


def _entry(value: Any) -> Entry:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValueError("entries: each entry is [index, term, type, data]")
    index, term, kind, data = value
    try:
        entry_type = EntryType(_int(kind, "entries.type"))
    except ValueError:
        raise ValueError("entries.type: unknown entry type") from None
    return Entry(_int(index, "entries.index"), _int(term, "entries.term"), entry_type,
                 _bytes(data, "entries.data"))


def _meta(value: Any) -> SnapshotMeta | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError("snapshot_meta: expected [index, term, members]")
    index, term, members = value
    if not isinstance(members, (list, tuple)):
        raise ValueError("snapshot_meta.members: expected a list")
    return SnapshotMeta(_int(index, "snapshot_meta.index"), _int(term, "snapshot_meta.term"),
                        tuple(_str(m, "snapshot_meta.members") for m in members))


def message_from_plain(obj: Any) -> Message:
    """Rebuild a Message from ``message_to_plain`` output.

    Raises:
        ValueError: ``obj`` is not a well-formed message; the text names the field.
    """
    if not isinstance(obj, (list, tuple)) or len(obj) != _FIELDS:
        raise ValueError(f"message: expected a list of {_FIELDS} fields")
    (kind, to, sender, term, log_term, index, entries, commit, reject, reject_hint, context,
     meta, offset, data, done) = obj
    try:
        msg_type = MessageType(_int(kind, "type"))
    except ValueError:
        raise ValueError("type: unknown message type") from None
    if not isinstance(entries, (list, tuple)):
        raise ValueError("entries: expected a list")
    parsed = tuple(_entry(e) for e in entries)
    for previous, entry in itertools.pairwise(parsed):
        if entry.index != previous.index + 1:
            raise ValueError("entries: indexes must be consecutive")
    return Message(
        type=msg_type, to=_str(to, "to"), sender=_str(sender, "sender"),
        term=_int(term, "term"), log_term=_int(log_term, "log_term"),
        index=_int(index, "index"), entries=parsed, commit=_int(commit, "commit"),
        reject=_bool(reject, "reject"), reject_hint=_int(reject_hint, "reject_hint"),
        context=_bytes(context, "context"), snapshot_meta=_meta(meta),
        offset=_int(offset, "offset"), data=_bytes(data, "data"), done=_bool(done, "done"),
    )
