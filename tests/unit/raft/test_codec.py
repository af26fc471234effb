"""Raft messages survive the plain form used on the wire; garbage is refused by field."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.node.transport import MAX_MESSAGE_BYTES
from dqueue.raft import (
    MAX_RAFT_INT,
    Entry,
    EntryType,
    Membership,
    Message,
    MessageType,
    SnapshotMeta,
    codec,
    message_from_plain,
    message_to_plain,
)
from dqueue.raft.codec import _FIELDS
from dqueue.raft.types import (
    MAX_CONTEXT_BYTES,
    MAX_ID_CHARS,
    MAX_MEMBERS,
    MAX_MESSAGE_DATA_BYTES,
)
from tests.depth import examples
from tests.unit.plain_values import PLAIN

FULL = Message(
    MessageType.APPEND_ENTRIES, "n2", "n1", term=7, log_term=6, index=41,
    entries=(Entry(42, 7, EntryType.NOOP, b""), Entry(43, 7, EntryType.NORMAL, b"\x00x")),
    commit=40, reject=True, reject_hint=12, context=b"ctx",
    snapshot_meta=SnapshotMeta(30, 5, Membership(("n1", "n2", "n3")), 0xFFFFFFFF),
    offset=1024, data=b"chunk",
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


# ------------------------------------------------------------------ bounds of every field

def _plain(**changes: object) -> list[object]:
    """FULL's plain form with some fields replaced by index name."""
    names = ["type", "to", "sender", "term", "log_term", "index", "entries", "commit", "reject",
             "reject_hint", "context", "snapshot_meta", "offset", "data", "done"]
    plain = message_to_plain(FULL)
    for name, value in changes.items():
        plain[names.index(name)] = value
    return plain


@pytest.mark.parametrize("name", ["term", "index", "commit", "reject_hint", "offset"])
def test_raft_ints_stop_at_max_raft_int(name):
    """2^64-1 from a forged message once crashed every member on msgpack overflow."""
    base = {"entries": []}  # so that term and index carry no entry bounds
    assert getattr(message_from_plain(_plain(**base, **{name: MAX_RAFT_INT})), name) == (
        MAX_RAFT_INT)
    for bad in (MAX_RAFT_INT + 1, (1 << 64) - 1, 1 << 200, -1, True, 1.0, "1"):
        with pytest.raises(ValueError, match=name):
            message_from_plain(_plain(**base, **{name: bad}))


def test_log_term_is_bounded():
    with pytest.raises(ValueError, match="log_term"):
        message_from_plain(_plain(log_term=MAX_RAFT_INT + 1))


@pytest.mark.parametrize(("name", "bad"), [
    ("to", "x" * (MAX_ID_CHARS + 1)), ("sender", b"n1"), ("sender", None),
    ("context", b"x" * (MAX_CONTEXT_BYTES + 1)), ("data", "text"), ("done", 0),
])
def test_ids_context_and_flags_are_bounded(name, bad):
    with pytest.raises(ValueError, match=name):
        message_from_plain(_plain(**{name: bad}))


def test_data_bytes_are_bounded(monkeypatch):
    monkeypatch.setattr(codec, "MAX_MESSAGE_DATA_BYTES", 8)
    assert message_from_plain(_plain(data=b"x" * 8)).data == b"x" * 8
    with pytest.raises(ValueError, match="data"):
        message_from_plain(_plain(data=b"x" * 9))
    # Entries count together: two entries of 5 bytes are 10.
    with pytest.raises(ValueError, match="entries"):
        message_from_plain(_plain(entries=[[42, 7, 0, b"x" * 5], [43, 7, 0, b"y" * 5]]))


def test_entries_count_is_bounded(monkeypatch):
    monkeypatch.setattr(codec, "MAX_ENTRIES_PER_MESSAGE", 2)
    message_from_plain(_plain(entries=[[42, 7, 0, b""], [43, 7, 0, b""]]))
    with pytest.raises(ValueError, match="entries"):
        message_from_plain(_plain(entries=[[42, 7, 0, b""], [43, 7, 0, b""], [44, 7, 0, b""]]))


@pytest.mark.parametrize("entries", [
    [[43, 7, 0, b""]],  # a gap after prev_log_index 41
    [[42, 7, 0, b""], [43, 6, 0, b""]],  # terms decrease
    [[42, 5, 0, b""]],  # below prev_log_term 6
    [[42, 8, 0, b""]],  # above the message's term 7
    [[MAX_RAFT_INT + 1, 7, 0, b""]],
])
def test_append_entries_must_follow_prev_log_index(entries):
    """A forged append with a gap used to reach RaftLog.append, which raises on a gap."""
    with pytest.raises(ValueError, match="entries"):
        message_from_plain(_plain(entries=entries))


def test_a_forwarded_proposal_carries_one_entry():
    one = Message(MessageType.PROPOSE, "n1", "n2", entries=(Entry(0, 0, EntryType.NORMAL, b"p"),))
    assert message_from_plain(message_to_plain(one)) == one
    plain = message_to_plain(one)
    plain[6] = plain[6] * 2
    with pytest.raises(ValueError, match="entries"):
        message_from_plain(plain)


@pytest.mark.parametrize("meta", [
    [30, 5, ["n1", "n2"]],  # the layout without checksum
    [30, 5, [], 0],
    [30, 5, ["n1", "n1"], 0],
    [30, 5, ["n1", ""], 0],
    [30, 5, [f"n{i}" for i in range(MAX_MEMBERS + 1)], 0],
    [30, 5, "n1", 0],
    [30, 5, ["n1"], 1 << 32],
    [30, 5, ["n1"], -1],
    [MAX_RAFT_INT + 1, 5, ["n1"], 0],
])
def test_snapshot_meta_is_checked(meta):
    with pytest.raises(ValueError, match="snapshot_meta"):
        message_from_plain(_plain(snapshot_meta=meta))


def test_data_bound_is_not_below_the_transport_frame_bound():
    """Nothing the peer transport delivers is refused for its size by the codec."""
    assert MAX_MESSAGE_DATA_BYTES >= MAX_MESSAGE_BYTES


def _never_raises_but_value_error(value: object) -> None:
    try:
        msg = message_from_plain(value)
    except ValueError:
        return
    assert isinstance(msg, Message)
    assert max(msg.term, msg.index, msg.commit, msg.log_term, msg.offset) <= MAX_RAFT_INT


@settings(max_examples=examples(400), deadline=None)
@given(PLAIN)
def test_any_value_gives_a_message_or_value_error(value):
    _never_raises_but_value_error(value)


@settings(max_examples=examples(600), deadline=None)
@given(st.integers(min_value=0, max_value=_FIELDS - 1), PLAIN,
       st.sampled_from(list(MessageType)))
def test_a_message_with_any_one_field_replaced_gives_a_message_or_value_error(field, value,
                                                                                kind):
    plain = _plain(type=int(kind))
    plain[field] = value
    _never_raises_but_value_error(plain)
