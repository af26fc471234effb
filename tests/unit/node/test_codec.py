"""Entry data and the mapping of stored records to the Raft core's types."""

from __future__ import annotations

import msgpack
import pytest

from dqueue.node.codec import (
    core_snapshot,
    decode_entry_items,
    encode_item,
    join_items,
    persisted_state,
    stored_snapshot,
)
from dqueue.node.store import LoadedState, StoredEntry, StoredHardState, StoredSnapshot
from dqueue.raft import Entry, EntryType, HardState


@pytest.mark.parametrize("count", [1, 2, 15, 16, 17, 300, 65_535, 65_536])
def test_batch_entry_round_trip_keeps_every_item_in_order(count):
    # 15/16 and 65,535/65,536 items cross the msgpack array header sizes.
    items = [(f"r-{i}", {"op": "tick", "now_ms": i}) for i in range(count)]
    data = join_items([encode_item(rid, cmd) for rid, cmd in items])
    assert decode_entry_items(data) == items
    assert msgpack.unpackb(data) == [[rid, cmd] for rid, cmd in items]  # plain msgpack


def test_entry_of_a_log_written_before_batching_is_a_batch_of_one():
    cmd = {"op": "tick", "now_ms": 5}
    assert decode_entry_items(msgpack.packb(["r-1", cmd])) == [("r-1", cmd)]


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
