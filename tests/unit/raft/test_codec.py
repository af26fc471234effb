"""Raft messages survive the plain form used on the wire; garbage is refused by field."""

from __future__ import annotations

import msgpack
import pytest

from dqueue.raft import (
    Entry,
    EntryType,
    Message,
    MessageType,
    SnapshotMeta,
    message_from_plain,
    message_to_plain,
)

FULL = Message(
    MessageType.INSTALL_SNAPSHOT, "n2", "n1", term=7, log_term=6, index=41,
    entries=(Entry(42, 7, EntryType.NOOP, b""), Entry(43, 7, EntryType.NORMAL, b"\x00x")),
    commit=40, reject=True, reject_hint=12, context=b"ctx",
    snapshot_meta=SnapshotMeta(30, 5, ("n1", "n2", "n3")), offset=1024, data=b"chunk",
    done=True,
)


@pytest.mark.parametrize("msg", [FULL, Message(MessageType.HEARTBEAT, "b", "a", term=1)])
def test_round_trip_through_msgpack(msg):
    packed = msgpack.packb(message_to_plain(msg), use_bin_type=True)
    assert message_from_plain(msgpack.unpackb(packed, raw=False)) == msg


@pytest.mark.parametrize(("index", "bad", "field"), [
    (0, 99, "type"),
    (1, "", "to"),
    (2, 5, "sender"),
    (3, -1, "term"),
    (6, [[1, 1, 0]], "entries"),
    (6, [[1, 1, 9, b""]], "entries.type"),
    (6, [[1, 1, 0, b""], [3, 1, 0, b""]], "entries"),
    (8, 1, "reject"),
    (10, "text", "context"),
    (11, [1, 2], "snapshot_meta"),
    (14, None, "done"),
])
def test_malformed_field_is_named(index, bad, field):
    plain = message_to_plain(FULL)
    plain[index] = bad
    with pytest.raises(ValueError, match=field):
        message_from_plain(plain)


@pytest.mark.parametrize("garbage", [None, 3, b"x", [], [1] * 14, {"type": 1}])
def test_wrong_shape_is_refused(garbage):
    with pytest.raises(ValueError):
        message_from_plain(garbage)
