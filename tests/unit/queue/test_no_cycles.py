"""The queue state forms no reference cycles, so reference counting alone frees what it drops.

The Raft process freezes its long-lived objects for the cyclic garbage collector
(dqueue/node/gcpause.py): a frozen cycle would never be freed. This test runs every command,
a snapshot and a restore, drops the states and asks the collector how many unreachable objects
it found: any cycle anywhere in what the state built would be counted.
"""

from __future__ import annotations

import gc

import dqueue.queue as dq
from dqueue.queue.config import QueueConfig


def _exercise() -> None:
    state = dq.QueueState(QueueConfig(lease_ms=1_000, max_retries=1, retention_ms=5_000))
    index = 0

    def apply(plain: dict) -> dict:
        nonlocal index
        index += 1
        outcome = state.apply(dq.command_from_plain(plain), index)
        assert outcome is not None and outcome["ok"], outcome
        return outcome["value"]

    apply({"op": "enqueue", "now_ms": 1_000, "tasks": [
        {"id": f"t{n}", "type": "email" if n % 2 else "sms", "payload": {"n": [n, {"k": n}]},
         "idempotency_key": f"key{n}", "delay_ms": 500 * (n % 3)} for n in range(40)]})
    leased = apply({"op": "lease", "now_ms": 2_000, "worker_id": "w", "max_tasks": 30})["tasks"]
    held = [(task["id"], task["lease"]["token"]) for task in leased]
    apply({"op": "ack", "now_ms": 2_100, "id": held[0][0], "worker_id": "w",
           "token": held[0][1]})
    apply({"op": "ack_batch", "now_ms": 2_100, "items": [
        {"id": task_id, "worker_id": "w", "token": token} for task_id, token in held[1:5]]})
    apply({"op": "nack", "now_ms": 2_200, "id": held[5][0], "worker_id": "w",
           "token": held[5][1], "reason": "boom"})
    apply({"op": "nack", "now_ms": 2_200, "id": held[6][0], "worker_id": "w",
           "token": held[6][1], "dead_letter": True})
    apply({"op": "extend", "now_ms": 2_300, "id": held[7][0], "worker_id": "w",
           "token": held[7][1], "lease_ms": 2_000})
    pending = next(f"t{n}" for n in range(40) if f"t{n}" not in dict(held))
    apply({"op": "cancel", "now_ms": 2_400, "id": pending})
    apply({"op": "tick", "now_ms": 9_000})  # leases expire, some tasks dead-letter
    apply({"op": "redrive", "now_ms": 9_100, "type": "email"})
    apply({"op": "purge", "now_ms": 9_200, "type": "sms"})
    apply({"op": "configure", "now_ms": 9_300, "settings": {"retention_ms": 1_000}})
    apply({"op": "tick", "now_ms": 60_000})  # finished tasks and dedup keys are pruned
    data = state.snapshot()
    other = dq.QueueState(QueueConfig())
    other.restore(data)
    other.restore(data)  # a second restore drops what the first built
    assert other.snapshot() == data
    assert list(state.drain_events())


def test_queue_state_forms_no_reference_cycles() -> None:
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()  # nothing may collect the garbage before it is counted
    try:
        _exercise()
        unreachable = gc.collect()
    finally:
        if was_enabled:
            gc.enable()
    assert unreachable == 0
