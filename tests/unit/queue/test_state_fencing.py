"""Lease fencing in QueueState: tokens from the leader's nonce, and holding by token only.

A lease command with a nonce (what a leader proposes: docs/security.md, "Lease fencing") gives
tokens ``<nonce>.<position>``, and its tasks are held only by their token; a lease without one
(an entry written before nonces) keeps the old ``<index>.<position>`` tokens and the old rule
(worker id alone is enough), so that old logs and snapshots apply exactly as they did.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue import commands, fields
from dqueue.queue.state import is_legacy_token

CONFIG = dq.QueueConfig(lease_ms=10_000, max_retries=3, backoff_base_ms=1_000,
                        backoff_jitter=0.0, retention_ms=100_000)
NONCE = "0123456789abcdef" * 2


class Twins:
    """Two states fed the same commands, except that ``refused`` gives the second a tick in
    place of the command: equal snapshots afterwards mean the command changed nothing."""

    def __init__(self) -> None:
        self.state, self.twin = dq.QueueState(CONFIG), dq.QueueState(CONFIG)
        self.index = 0

    def both(self, command: Any) -> dict[str, Any]:
        self.index += 1
        outcome = self.state.apply(command, self.index)
        assert self.twin.apply(command, self.index) == outcome
        return outcome

    def ok(self, command: Any) -> dict[str, Any]:
        outcome = self.both(command)
        assert outcome["ok"], outcome
        return outcome["value"]

    def refused(self, command: Any) -> dict[str, Any]:
        self.index += 1
        outcome = self.state.apply(command, self.index)
        self.twin.apply(dq.Tick(now_ms=command.now_ms), self.index)
        assert not outcome["ok"], outcome
        assert self.state.snapshot() == self.twin.snapshot()
        return outcome

    def leased(self, nonce: str | None = NONCE, worker: str = "w1",
               n: int = 2) -> list[dict[str, Any]]:
        self.ok(dq.Enqueue(tasks=tuple(dq.NewTask(id=f"t{self.index}-{i}", type="email")
                                       for i in range(n)), now_ms=1_000))
        return self.ok(dq.Lease(worker_id=worker, max_tasks=n, nonce=nonce,
                                now_ms=2_000))["tasks"]


def test_tokens_are_the_nonce_and_the_position_not_the_index() -> None:
    t = Twins()
    leased = t.leased()
    assert [task["lease"]["token"] for task in leased] == [f"{NONCE}.0", f"{NONCE}.1"]
    assert not any(task["lease"]["token"].startswith(f"{t.index}.") for task in leased)


def test_a_fresh_nonce_per_lease_gives_tokens_no_other_lease_has() -> None:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=tuple(dq.NewTask(id=f"t{i}", type="email")
                                       for i in range(20)), now_ms=1), 1)
    tokens: list[str] = []
    for index in range(2, 12):
        lease = dq.Lease(worker_id="w", max_tasks=2, now_ms=2,
                         nonce=secrets.token_hex(fields.LEASE_NONCE_BYTES))
        outcome = state.apply(lease, index)
        assert outcome is not None
        tokens += [task["lease"]["token"] for task in outcome["value"]["tasks"]]
    assert len(tokens) == len(set(tokens)) == 20
    assert not any(is_legacy_token(token) for token in tokens)


@pytest.mark.parametrize("make", [
    lambda task, token: dq.Ack(id=task, worker_id="w1", token=token, now_ms=3_000),
    lambda task, token: dq.Nack(id=task, worker_id="w1", token=token, reason="x", now_ms=3_000),
    lambda task, token: dq.Nack(id=task, worker_id="w1", token=token, dead_letter=True,
                                now_ms=3_000),
    lambda task, token: dq.Extend(id=task, worker_id="w1", token=token, lease_ms=1,
                                  now_ms=3_000),
], ids=["ack", "nack", "dead_letter", "release"])
def test_without_or_with_a_wrong_token_nothing_changes(make: Any) -> None:
    t = Twins()
    task = t.leased()[0]
    token = task["lease"]["token"]
    # Missing, guessed in the old shape, another task's, off by one character.
    for wrong in (None, f"{t.index}.0", f"{NONCE}.1", token[:-1] + "9", NONCE):
        outcome = t.refused(make(task["id"], wrong))
        assert outcome["code"] == "lease_conflict"
    # The right token with another worker id is refused too.
    other = make(task["id"], token)
    outcome = t.refused(type(other)(**{**_fields(other), "worker_id": "w2"}))
    assert outcome["code"] == "lease_conflict"
    assert t.both(make(task["id"], token))["ok"]


def _fields(command: Any) -> dict[str, Any]:
    return {name: getattr(command, name) for name in command.__slots__}


def test_ack_batch_items_are_each_checked_by_token() -> None:
    t = Twins()
    first, second = t.leased()
    batch = dq.AckBatch(items=(
        dq.Ack(id=first["id"], worker_id="w1", token=first["lease"]["token"], now_ms=3_000),
        dq.Ack(id=second["id"], worker_id="w1", token=None, now_ms=3_000),
    ), now_ms=3_000)
    results = t.ok(batch)["results"]
    assert results[0]["ok"] and results[0]["value"]["task"]["status"] == "completed"
    assert results[1] == {"ok": False, "code": "lease_conflict",
                          "message": results[1]["message"]}
    assert t.state.get_task(second["id"])["status"] == "leased"


def test_a_repeated_ack_needs_the_token_too() -> None:
    t = Twins()
    task = t.leased()[0]
    token = task["lease"]["token"]
    t.ok(dq.Ack(id=task["id"], worker_id="w1", token=token, now_ms=3_000))
    assert t.ok(dq.Ack(id=task["id"], worker_id="w1", token=token,
                       now_ms=3_001))["task"]["status"] == "completed"
    assert t.refused(dq.Ack(id=task["id"], worker_id="w1", now_ms=3_002))["code"] == \
        "lease_conflict"


def test_an_expired_and_released_lease_is_not_held_by_its_old_token() -> None:
    t = Twins()
    task = t.leased(n=1)[0]
    again = t.ok(dq.Lease(worker_id="w1", nonce="f" * 32, now_ms=30_000))["tasks"]
    assert [x["id"] for x in again] == [task["id"]]
    assert t.refused(dq.Ack(id=task["id"], worker_id="w1", token=task["lease"]["token"],
                            now_ms=30_001))["code"] == "lease_conflict"


def test_legacy_leases_keep_their_tokens_and_the_old_rule() -> None:
    t = Twins()
    first, second, third = t.leased(nonce=None, n=3)
    assert first["lease"]["token"] == f"{t.index}.0"
    assert is_legacy_token(first["lease"]["token"])
    # As an old log applied them: by worker id alone, or by the old token.
    assert t.ok(dq.Ack(id=first["id"], worker_id="w1", now_ms=3_000))["task"]["status"] == \
        "completed"
    assert t.ok(dq.Ack(id=first["id"], worker_id="w1", now_ms=3_001))["task"]["status"] == \
        "completed"
    assert t.ok(dq.Nack(id=second["id"], worker_id="w1", token=second["lease"]["token"],
                        now_ms=3_002))["task"]["status"] == "pending"
    assert t.refused(dq.Ack(id=third["id"], worker_id="w1", token=f"{t.index}.9",
                            now_ms=3_003))["code"] == "lease_conflict"
    assert t.refused(dq.Ack(id=third["id"], worker_id="w2", now_ms=3_004))["code"] == \
        "lease_conflict"


def test_a_restored_snapshot_keeps_which_leases_need_their_token() -> None:
    t = Twins()
    fenced = t.leased()[0]
    legacy = t.leased(nonce=None, n=1)[0]
    restored = dq.QueueState(CONFIG)
    restored.restore(t.state.snapshot())
    index = t.index + 1
    refused = restored.apply(dq.Ack(id=fenced["id"], worker_id="w1", now_ms=3_000), index)
    assert refused is not None and refused["code"] == "lease_conflict"
    done = restored.apply(dq.Ack(id=legacy["id"], worker_id="w1", now_ms=3_000), index + 1)
    assert done is not None and done["ok"]
    done = restored.apply(dq.Ack(id=fenced["id"], worker_id="w1",
                                 token=fenced["lease"]["token"], now_ms=3_000), index + 2)
    assert done is not None and done["ok"]


@pytest.mark.parametrize("nonce", ["", "0" * 31, "0" * 33, "A" * 32, "g" * 32, 5, ["a"],
                                   "0123456789ABCDEF" * 2])
def test_a_malformed_nonce_is_refused(nonce: Any) -> None:
    with pytest.raises(commands.InvalidCommand) as caught:
        commands.command_from_plain({"op": "lease", "worker_id": "w", "nonce": nonce})
    assert caught.value.field == "nonce"


def test_the_nonce_survives_the_plain_form() -> None:
    lease = dq.Lease(worker_id="w", nonce=NONCE, now_ms=5)
    assert commands.command_from_plain(lease.to_plain()) == lease
    assert commands.command_from_plain({"op": "lease", "worker_id": "w"}).nonce is None


def test_legacy_tokens_are_told_from_nonce_tokens() -> None:
    assert is_legacy_token("1.0") and is_legacy_token(f"{(1 << 63) - 1}.99")
    assert not is_legacy_token(f"{NONCE}.0") and not is_legacy_token(None)
