"""Snapshots: deterministic bytes, faithful restore, and rejection of anything malformed."""

from __future__ import annotations

import gc
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


def good_document() -> dict:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="a", type="t", idempotency_key="k"),), now_ms=1), 1)
    state.apply(dq.Lease(worker_id="w", now_ms=2), 2)
    return json.loads(state.snapshot())


def corrupt(path: str, value: object) -> bytes:
    document = good_document()
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


@pytest.mark.parametrize("data", [
    b"", b"\xff\xfe", b"[]", b'{"format": 2}', b"null",
    corrupt("clock_ms", -1), corrupt("tasks", {}), corrupt("tasks/0", [1]),
    corrupt("tasks/0/0", 5), corrupt("tasks/0/3", "high"), corrupt("tasks/0/6", "lost"),
    corrupt("tasks/0/12", None), corrupt("dedup/0", ["k"]), corrupt("dedup", None),
])
def test_malformed_snapshot_raises_value_error_and_keeps_state(data: bytes) -> None:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="keep", type="t"),), now_ms=1), 1)
    before = state.snapshot()
    with pytest.raises(ValueError):
        state.restore(data)
    assert state.snapshot() == before


def test_good_document_decodes() -> None:
    decoded = decode(json.dumps(good_document()).encode())
    assert [t.id for t in decoded.tasks] == ["a"] and decoded.dedup == [("k", "a", 3_001)]


def test_duplicate_task_ids_are_refused() -> None:
    document = good_document()
    document["tasks"].append(document["tasks"][0])
    state = dq.QueueState(CONFIG)
    with pytest.raises(ValueError):
        state.restore(json.dumps(document).encode())
    assert state.get_task("a") is None


def test_collector_state_is_restored_after_snapshot_and_restore() -> None:
    state = dq.QueueState(CONFIG)
    assert gc.isenabled()
    state.restore(state.snapshot())
    with pytest.raises(ValueError):
        state.restore(b"garbage")
    assert gc.isenabled()
    gc.disable()
    try:
        state.restore(state.snapshot())
        assert not gc.isenabled()
    finally:
        gc.enable()
