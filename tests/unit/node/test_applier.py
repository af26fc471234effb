"""apply_entries: queue commands come only from NORMAL entries, in log order."""

from __future__ import annotations

from typing import Any

from dqueue.node.applier import apply_entries
from dqueue.node.codec import encode_item, join_items
from dqueue.queue import QueueState
from dqueue.raft import ConfChange, ConfChangeKind, Entry, EntryType, Membership
from dqueue.raft.membership import encode_conf_entry


def _apply(entries: list[Entry]) -> tuple[QueueState, int, list[tuple[str, Any]]]:
    queue = QueueState()
    answered: list[tuple[str, Any]] = []
    count = apply_entries(entries, queue, lambda data: None, {"r1"},
                          lambda rid, outcome: answered.append((rid, outcome)))
    return queue, count, answered


def _enqueue_entry(index: int) -> Entry:
    cmd = {"op": "enqueue", "now_ms": 1_000, "tasks": [{"id": "t1", "type": "email"}]}
    return Entry(index, 1, EntryType.NORMAL, join_items([encode_item("r1", cmd)]))


def test_conf_change_and_noop_entries_carry_no_queue_command() -> None:
    change = ConfChange(ConfChangeKind.ADD_LEARNER, "n4")
    after = Membership(voters=("n1", "n2", "n3"), learners=("n4",))
    entries = [Entry(1, 1, EntryType.NOOP),
               Entry(2, 1, EntryType.CONF_CHANGE, encode_conf_entry(change, after)),
               _enqueue_entry(3)]
    queue, count, answered = _apply(entries)
    assert count == 1
    assert [rid for rid, _ in answered] == ["r1"]
    assert queue.get_task("t1") is not None
