"""Snapshots: deterministic bytes, faithful restore, and rejection of anything malformed."""

from __future__ import annotations

import json
import random

import pytest

import dqueue.queue as dq
from dqueue.queue.snapshot import decode

CONFIG = dq.QueueConfig(lease_ms=1_000, retention_ms=5_000, dedup_window_ms=3_000)


def history(seed: int) -> list[object]:
    """A seeded mix of commands (the same seed gives the same list)."""
    rng = random.Random(seed)
    commands: list[object] = []
    now_ms = 0
    for i in range(300):
        now_ms += rng.choice([0, 10, 400])
        kind = rng.randrange(4)
        if kind == 0:
            commands.append(dq.Enqueue(tasks=(dq.NewTask(
                id=f"t{i}", type=rng.choice("ab"), payload={"i": i, "z": [i, None]},
                priority=rng.randrange(3), idempotency_key=rng.choice([None, "k1", "k2"]),
                delay_ms=rng.choice([0, 500])),), now_ms=now_ms))
        elif kind == 1:
            commands.append(dq.Lease(worker_id=rng.choice(["w1", "w2"]), max_tasks=2,
                                  now_ms=now_ms))
        elif kind == 2:
            commands.append(dq.Ack(id=f"t{rng.randrange(i + 1)}", worker_id="w1", now_ms=now_ms))
        else:
            commands.append(dq.Nack(id=f"t{rng.randrange(i + 1)}", worker_id="w2", reason="x",
                                 now_ms=now_ms))
    return commands


def run(state: dq.QueueState, commands: list[object], start_index: int) -> list[dict]:
    return [state.apply(c, start_index + i) for i, c in enumerate(commands)]  # type: ignore


def test_same_history_gives_identical_bytes() -> None:
    a, b = dq.QueueState(CONFIG), dq.QueueState(CONFIG)
    run(a, history(3), 1)
    run(b, history(3), 1)
    assert a.snapshot() == b.snapshot()
    c = dq.QueueState(CONFIG)
    run(c, history(4), 1)
    assert c.snapshot() != a.snapshot()


@pytest.mark.parametrize("seed", range(5))
def test_restored_state_behaves_identically(seed: int) -> None:
    commands = history(seed)
    original = dq.QueueState(CONFIG)
    run(original, commands[:150], 1)
    restored = dq.QueueState(CONFIG)
    restored.restore(original.snapshot())
    assert restored.snapshot() == original.snapshot()
    assert restored.next_deadline_ms() == original.next_deadline_ms()
    assert run(restored, commands[150:], 151) == run(original, commands[150:], 151)
    assert restored.snapshot() == original.snapshot()
    assert restored.stats() == original.stats()


def test_restore_replaces_previous_state() -> None:
    empty = dq.QueueState(CONFIG).snapshot()
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="a", type="t"),), now_ms=1), 1)
    state.restore(empty)
    assert state.get_task("a") is None and state.stats()["by_status"]["pending"] == 0
    state.apply(dq.Tick(now_ms=2), 1)  # last_index was restored too


def test_snapshot_is_compact_json_and_keeps_payload_key_order() -> None:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="a", type="t", payload={"b": 1, "a": [2.5, "é"]}),),
                        now_ms=1), 1)
    data = state.snapshot()
    assert json.dumps(json.loads(data), separators=(",", ":")).encode() == data
    restored = dq.QueueState(CONFIG)
    restored.restore(data)
    assert list(restored.get_task("a")["payload"]) == ["b", "a"]
    assert restored.get_task("a") == state.get_task("a")


def good_state() -> dq.QueueState:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="a", type="t", idempotency_key="k"),), now_ms=1), 1)
    state.apply(dq.Lease(worker_id="w", now_ms=2), 2)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="b", type="u", payload=[1]),), now_ms=3), 3)
    return state


def good_document() -> dict:
    return json.loads(good_state().snapshot())


def format1_document() -> dict:
    """The same state in the row layout of format 1, which older versions wrote."""
    state = good_state()
    document = json.loads(state.snapshot())
    del document["types"]
    document["format"] = 1
    document["tasks"] = [task.to_row() for task in state._tasks.values()]
    return document


def corrupt(path: str, value: object, document: dict | None = None) -> bytes:
    document = good_document() if document is None else document
    target = document
    keys = path.split("/")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return json.dumps(document).encode()


def corrupt1(path: str, value: object) -> bytes:
    return corrupt(path, value, format1_document())


@pytest.mark.parametrize("data", [
    b"", b"\xff\xfe", b"[]", b'{"format": 2}', b'{"format": 3}', b"null",
    corrupt("clock_ms", -1), corrupt("tasks", {}), corrupt("tasks", []),
    corrupt("tasks/id", ["a"]), corrupt("tasks/id/0", 5), corrupt("tasks/priority/0", "high"),
    corrupt("tasks/priority/0", True), corrupt("tasks/status/0", "lost"),
    corrupt("tasks/status/0", 9), corrupt("tasks/type/0", 2), corrupt("tasks/type/0", -1),
    corrupt("types", ["t", 3]), corrupt("types", None), corrupt("tasks/lease_token/0", None),
    corrupt("tasks/lease_worker/1", "w"), corrupt("tasks/last_error/1", 7),
    corrupt("tasks/lease_expires_at_ms/0", "soon"), corrupt("dedup/0", ["k"]),
    corrupt("dedup", None),
    corrupt1("tasks", {}), corrupt1("tasks/0", [1]), corrupt1("tasks/0/0", 5),
    corrupt1("tasks/0/3", "high"), corrupt1("tasks/0/6", "lost"), corrupt1("tasks/0/12", None),
])
def test_malformed_snapshot_raises_value_error_and_keeps_state(data: bytes) -> None:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="keep", type="t"),), now_ms=1), 1)
    before = state.snapshot()
    with pytest.raises(ValueError):
        state.restore(data)
    assert state.snapshot() == before


def test_format_1_snapshots_of_older_versions_are_still_restored() -> None:
    original = good_state()
    restored = dq.QueueState(CONFIG)
    restored.restore(json.dumps(format1_document(), separators=(",", ":")).encode())
    assert restored.snapshot() == original.snapshot()
    assert [restored.get_task(i) for i in "ab"] == [original.get_task(i) for i in "ab"]


def test_snapshot_is_columnar_with_a_type_table() -> None:
    document = good_document()
    assert document["format"] == 4 and document["types"] == ["t", "u"]
    assert [entry[0] for entry in document["queues"]] == ["default"]
    columns = document["tasks"]
    assert columns["id"] == ["a", "b"] and columns["type"] == [0, 1]
    assert columns["queue"] == [0, 0] and columns["source_queue"] == [None, None]
    assert columns["status"] == [1, 0] and columns["payload"] == [None, [1]]
    assert columns["lease_worker"] == ["w", None]


def test_good_document_decodes() -> None:
    decoded = decode(json.dumps(good_document()).encode())
    assert [t.id for t in decoded.tasks] == ["a", "b"] and decoded.dedup == [("k", "a", 3_001)]


def test_duplicate_task_ids_are_refused() -> None:
    document = good_document()
    document["tasks"]["id"][1] = "a"
    old_layout = format1_document()
    old_layout["tasks"].append(old_layout["tasks"][0])
    for bad in (document, old_layout):
        state = dq.QueueState(CONFIG)
        with pytest.raises(ValueError):
            state.restore(json.dumps(bad).encode())
        assert state.get_task("a") is None

