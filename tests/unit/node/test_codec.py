"""Entry data and the mapping of stored records to the Raft core's types."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.node.codec import (
    core_snapshot,
    decode_entry_items,
    encode_item,
    entry_is_applicable,
    join_items,
    persisted_state,
    stored_snapshot,
)
from dqueue.node.store import LoadedState, StoredEntry, StoredHardState, StoredSnapshot
from dqueue.queue import (
    Ack,
    AckBatch,
    Enqueue,
    Extend,
    InvalidCommand,
    Lease,
    NewTask,
    command_from_plain,
    fields,
)
from dqueue.queue.log_commands import command_from_log
from dqueue.queue.sessions import ClientSession
from dqueue.raft import Entry, EntryType, HardState
from tests.depth import examples


@pytest.mark.parametrize("count", [1, 2, 15, 16, 17, 300, 65_535, 65_536])
def test_batch_entry_round_trip_keeps_every_item_in_order(count):
    # 15/16 and 65,535/65,536 items cross the msgpack array header sizes.
    items = [(f"r-{i}", {"op": "tick", "now_ms": i}) for i in range(count)]
    data = join_items([encode_item(rid, cmd) for rid, cmd in items])
    assert decode_entry_items(data) == ([rid for rid, _ in items], [cmd for _, cmd in items],
                                        [None] * count)
    assert msgpack.unpackb(data) == [[rid, cmd] for rid, cmd in items]  # plain msgpack


def test_entry_of_a_log_written_before_batching_is_a_batch_of_one():
    cmd = {"op": "tick", "now_ms": 5}
    assert decode_entry_items(msgpack.packb(["r-1", cmd])) == (["r-1"], [cmd], [None])


def test_items_with_a_session_decode_beside_items_without_one():
    cmd = {"op": "tick", "now_ms": 5}
    session = ClientSession("n2.ab12", 7, 5)
    data = join_items([encode_item("r-1", cmd, session), encode_item("", cmd),
                       msgpack.packb(["r-2", cmd])])  # an item an older version wrote
    assert decode_entry_items(data) == (["r-1", "", "r-2"], [cmd] * 3, [session, None, None])
    assert msgpack.unpackb(data)[0] == ["r-1", cmd, "n2.ab12", 7, 5]


@pytest.mark.parametrize("fields", [["c", 1], ["c", 1, 2, 3], ["", 1, 0], ["c", -1, 0],
                                    ["c", 1, 2], ["c", "1", 0], [1, 1, 0], ["c", True, 0],
                                    ["x" * 129, 1, 0]])
def test_an_item_with_a_malformed_session_is_refused(fields):
    data = join_items([msgpack.packb(["r-1", {"op": "tick"}, *fields])])
    with pytest.raises(ValueError):
        decode_entry_items(data)


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01\x02", b"\x91\xa1x", b"\x90",
                                  b"\x91\x92\x01\x02", b"\x91\x93\xa1x\x01\x02"])
def test_undecodable_entry_data_raises_value_error(data):
    with pytest.raises(ValueError):
        decode_entry_items(data)


def test_empty_store_is_a_new_member():
    assert persisted_state(LoadedState(None, None, None, [])) is None


def test_loaded_state_maps_to_the_core_types():
    loaded = LoadedState(
        hard_state=StoredHardState(4, "n2", 6),
        members=("n1", "n2"),
        snapshot=StoredSnapshot(5, 3, ("n1", "n2"), b"q"),
        entries=[StoredEntry(5, 3, 0, b"old"), StoredEntry(6, 4, 1, b""),
                 StoredEntry(7, 4, 0, b"x")],
    )
    state = persisted_state(loaded)
    assert state.hard_state == HardState(4, "n2", 6)
    assert state.snapshot.meta.index == 5
    assert state.entries == [Entry(6, 4, EntryType.NOOP, b""), Entry(7, 4, EntryType.NORMAL, b"x")]


def test_snapshot_conversions_are_inverse():
    stored = StoredSnapshot(9, 2, ("a", "b", "c"), b"data")
    assert stored_snapshot(core_snapshot(stored)) == stored


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=12)
_type = st.from_regex(fields.TYPE_PATTERN, fullmatch=True)
_json = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | _text,
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_text, inner, max_size=3), max_leaves=6)


def _optional(name: str, values: st.SearchStrategy) -> st.SearchStrategy:
    """A field that is absent, None (the default) or given."""
    return st.one_of(st.just({}), st.just({name: None}), values.map(lambda v: {name: v}))


def _merged(*parts: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


_queue = st.from_regex(r"[A-Za-z0-9_-]{1,20}(\.fifo)?", fullmatch=True)
_new_task = _merged(
    st.fixed_dictionaries({"id": _text, "type": _type}),
    _optional("payload", _json),
    _optional("priority", st.integers(fields.PRIORITY.low, fields.PRIORITY.high)),
    _optional("max_retries", st.integers(0, 100)), _optional("idempotency_key", _text),
    _optional("delay_ms", st.integers(0, fields.DELAY_MS.high)),
    _optional("queue", _queue))
_now = _optional("now_ms", st.integers(0, 2**63 - 1))
_token = _optional("token", _text)
_lease_ms = _optional("lease_ms", st.integers(1, 10**6))
_logged = st.one_of(
    _merged(st.fixed_dictionaries({"op": st.just("enqueue"),
                                   "tasks": st.lists(_new_task, min_size=1, max_size=4)}), _now),
    _merged(st.fixed_dictionaries({"op": st.just("ack"), "id": _text, "worker_id": _text}),
            _token, _now),
    _merged(st.fixed_dictionaries({"op": st.just("ack_batch"), "items": st.lists(
        _merged(st.fixed_dictionaries({"id": _text, "worker_id": _text}), _token),
        min_size=1, max_size=4)}), _now),
    _merged(st.fixed_dictionaries({"op": st.just("lease"), "worker_id": _text}),
            _optional("types", st.lists(_type, min_size=1, max_size=3)),
            _optional("max_tasks", st.integers(1, 100)), _lease_ms,
            _optional("nonce", st.text("0123456789abcdef", min_size=32, max_size=32)),
            _optional("queues", st.lists(_queue, min_size=1, max_size=3)), _now),
    _merged(st.fixed_dictionaries({"op": st.just("extend"), "id": _text, "worker_id": _text}),
            _token, _lease_ms, _now),
    _merged(st.fixed_dictionaries({"op": st.just("nack"), "id": _text, "worker_id": _text}),
            _token, _optional("reason", _text), _now),
    _merged(st.fixed_dictionaries({"op": st.just("tick")}), _now),
)


@settings(max_examples=examples(400), deadline=None)
@given(_logged)
def test_command_from_log_equals_the_validating_parser_on_valid_commands(cmd):
    assert command_from_log(cmd) == command_from_plain(cmd)


def test_command_from_log_knows_every_field_of_the_commands_it_rebuilds():
    # A field added to one of these commands must be added to command_from_log as well.
    assert {f.name for f in dataclasses.fields(NewTask)} == {
        "id", "type", "payload", "priority", "max_retries", "idempotency_key", "delay_ms",
        "queue", "group"}
    assert {f.name for f in dataclasses.fields(Enqueue)} == {"tasks", "now_ms"}
    assert {f.name for f in dataclasses.fields(Ack)} == {"id", "worker_id", "token", "result",
                                                         "now_ms"}
    assert {f.name for f in dataclasses.fields(AckBatch)} == {"items", "now_ms"}
    assert {f.name for f in dataclasses.fields(Lease)} == {
        "worker_id", "types", "max_tasks", "lease_ms", "nonce", "queues", "now_ms"}
    assert {f.name for f in dataclasses.fields(Extend)} == {
        "id", "worker_id", "token", "lease_ms", "now_ms"}


@pytest.mark.parametrize("cmd", [
    {"op": "enqueue", "tasks": [{"type": "x"}]},
    {"op": "ack", "id": "t"},
    {"op": "ack_batch", "items": [{"id": "t", "worker_id": "w"}, {"id": "u"}]},
    {"op": "ack_batch", "items": [["t", "w"]]},
    {"op": "lease", "worker_id": "w", "types": 5},
    {"op": "nope"},
    ["op", "ack"],
])
def test_command_from_log_refuses_what_is_not_a_command(cmd):
    with pytest.raises(InvalidCommand):
        command_from_log(cmd)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(_logged, min_size=1, max_size=5))
def test_a_batch_of_valid_commands_is_applicable(cmds):
    """What a node proposes is what the leader accepts from a follower's PROPOSE."""
    data = join_items([encode_item(f"r{i}", cmd) for i, cmd in enumerate(cmds)])
    assert entry_is_applicable(data)
    assert entry_is_applicable(b"")  # applies as nothing


@pytest.mark.parametrize("data", [
    b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"rid": "r"}),
    join_items([encode_item("r", {"op": "tick"}), encode_item("s", {"op": "cancel"})]),
    # The fast path of command_from_log would take this one: the full check does not.
    join_items([encode_item("r", {"op": "enqueue", "tasks": []})]),
    join_items([encode_item("r", {"op": "ack", "id": 5, "worker_id": "w"})]),
])
def test_an_entry_that_would_stop_every_member_is_not_applicable(data):
    assert not entry_is_applicable(data)
