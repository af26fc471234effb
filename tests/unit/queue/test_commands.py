"""Plain forms of the commands: round trips, defaults, and rejection naming the field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dqueue.queue as dq

COMMANDS = [
    dq.Enqueue(tasks=(dq.NewTask(id="a", type="email", payload={"to": ["x", 1, 2.5, None, True]},
                           priority=-3, max_retries=0, idempotency_key="k", delay_ms=10),),
            now_ms=5),
    dq.Lease(worker_id="w", types=("a", "b"), max_tasks=100, lease_ms=1, now_ms=6),
    dq.Lease(worker_id="w"),
    dq.Ack(id="a", worker_id="w", token="3.0", now_ms=7),
    dq.Nack(id="a", worker_id="w", token=None, reason="boom", dead_letter=True, now_ms=8),
    dq.Extend(id="a", worker_id="w", lease_ms=500, now_ms=9),
    dq.Cancel(id="a", now_ms=10),
    dq.Redrive(id="a"), dq.Redrive(type="email"), dq.Redrive(),
    dq.Purge(type="email"), dq.Purge(),
    dq.Tick(now_ms=11),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_round_trip(command: Any) -> None:
    plain = command.to_plain()
    assert dq.command_from_plain(plain) == command
    assert plain["op"] == type(command).__name__.lower()


def test_ack_batch_round_trip_and_items_carry_the_batch_time() -> None:
    command = dq.AckBatch(items=(dq.Ack(id="a", worker_id="w", token="3.0", now_ms=7),
                                 dq.Ack(id="b", worker_id="v", now_ms=7)), now_ms=7)
    plain = command.to_plain()
    assert plain == {"op": "ack_batch", "now_ms": 7, "items": [
        {"id": "a", "worker_id": "w", "token": "3.0"},
        {"id": "b", "worker_id": "v", "token": None}]}
    assert dq.command_from_plain(plain) == command
    stamped = dq.command_from_plain({**plain, "now_ms": 9})
    assert [item.now_ms for item in stamped.items] == [9, 9]


def test_omitted_and_none_fields_take_defaults() -> None:
    got = dq.command_from_plain({"op": "enqueue", "tasks": [
        {"id": "a", "type": "t", "priority": None, "delay_ms": None}]})
    assert got == dq.Enqueue(tasks=(dq.NewTask(id="a", type="t"),), now_ms=0)
    assert dq.command_from_plain({"op": "lease", "worker_id": "w", "max_tasks": None}) == \
        dq.Lease(worker_id="w", max_tasks=1)
    assert dq.command_from_plain({"op": "nack", "id": "a", "worker_id": "w",
                               "dead_letter": None}).dead_letter is False


BAD = [
    ([], "op"),
    ({"op": "explode"}, "op"),
    ({"op": "tick", "extra": 1}, "extra"),
    ({"op": "tick", "now_ms": -1}, "now_ms"),
    ({"op": "tick", "now_ms": True}, "now_ms"),
    ({"op": "enqueue", "tasks": []}, "tasks"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t"}] * 1_001}, "tasks"),
    ({"op": "enqueue", "tasks": ["x"]}, "tasks[0]"),
    ({"op": "enqueue", "tasks": [{"type": "t"}]}, "tasks[0].id"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": ""}]}, "tasks[0].type"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "priority": "1"}]},
     "tasks[0].priority"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "priority": 1 << 63}]},
     "tasks[0].priority"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "max_retries": -1}]},
     "tasks[0].max_retries"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "delay_ms": 1.5}]},
     "tasks[0].delay_ms"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "payload": float("nan")}]},
     "tasks[0].payload"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "payload": {1: "x"}}]},
     "tasks[0].payload"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "payload": b"raw"}]},
     "tasks[0].payload"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "payload": (1, 2)}]},
     "tasks[0].payload"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "colour": 1}]}, "tasks[0].colour"),
    ({"op": "lease"}, "worker_id"),
    ({"op": "lease", "worker_id": "w", "types": []}, "types"),
    ({"op": "lease", "worker_id": "w", "types": ["a", 3]}, "types"),
    ({"op": "lease", "worker_id": "w", "max_tasks": 101}, "max_tasks"),
    ({"op": "lease", "worker_id": "w", "lease_ms": 0}, "lease_ms"),
    ({"op": "ack", "id": "a"}, "worker_id"),
    ({"op": "ack", "id": "a", "worker_id": "w", "token": 5}, "token"),
    ({"op": "ack_batch"}, "items"),
    ({"op": "ack_batch", "items": []}, "items"),
    ({"op": "ack_batch", "items": {"id": "a", "worker_id": "w"}}, "items"),
    ({"op": "ack_batch", "items": [{"id": "a", "worker_id": "w"}] * 1_001}, "items"),
    ({"op": "ack_batch", "items": [{"id": "a", "worker_id": "w"}, "x"]}, "items[1]"),
    ({"op": "ack_batch", "items": [{"id": "a", "worker_id": "w"}, {"id": "b"}]},
     "items[1].worker_id"),
    ({"op": "ack_batch", "items": [{"id": "", "worker_id": "w"}]}, "items[0].id"),
    ({"op": "ack_batch", "items": [{"id": "a", "worker_id": "w", "token": 5}]},
     "items[0].token"),
    ({"op": "ack_batch", "items": [{"id": "a", "worker_id": "w", "reason": "x"}]},
     "items[0].reason"),
    ({"op": "nack", "id": "a", "worker_id": "w", "dead_letter": "yes"}, "dead_letter"),
    ({"op": "nack", "id": "a", "worker_id": "w", "reason": 3}, "reason"),
    ({"op": "extend", "id": "a", "worker_id": "w", "lease_ms": -5}, "lease_ms"),
    ({"op": "cancel"}, "id"),
    ({"op": "redrive", "id": "a", "type": "t"}, "type"),
    ({"op": "purge", "type": 1}, "type"),
]


@pytest.mark.parametrize(("plain", "field"), BAD, ids=[f for _, f in BAD])
def test_rejects_naming_the_field(plain: Any, field: str) -> None:
    with pytest.raises(dq.InvalidCommand) as info:
        dq.command_from_plain(plain)
    assert info.value.field == field
    assert info.value.message


def test_deep_payload_is_rejected() -> None:
    payload: Any = 1
    for _ in range(100):
        payload = [payload]
    with pytest.raises(dq.InvalidCommand):
        dq.command_from_plain({"op": "enqueue", "tasks": [{"id": "a", "type": "t",
                                                         "payload": payload}]})


# ---------------------------------------------------------------- fast paths of the parser

class _Mapping(dict):  # type: ignore[type-arg]
    """A dict subclass: the parser's fast paths take exact dicts only, so this one is
    validated by the full checks, the reference the fast paths must agree with."""


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(1 << 64), max_value=1 << 64),
    st.sampled_from([0, -1, 1, 10_000, 10_001, dq.commands.MAX_DELAY_MS,
                     dq.commands.MAX_DELAY_MS + 1, dq.commands.INT64_MIN - 1]),
    st.text(max_size=3), st.just("x" * 256), st.just("x" * 257), st.floats(),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=2), st.floats()),
             max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=2), st.integers()),
                    st.one_of(st.none(), st.text(max_size=2), st.booleans(), st.floats(),
                              st.lists(st.integers(), max_size=2)), max_size=3))
_TASK_FIELDS = ["id", "type", "payload", "priority", "max_retries", "idempotency_key",
                "delay_ms", "other"]


def _parse(plain: dict[str, Any]) -> Any:
    try:
        return dq.command_from_plain(plain)
    except dq.InvalidCommand as exc:
        return ("invalid", exc.field, exc.message)


@given(st.lists(st.dictionaries(st.sampled_from(_TASK_FIELDS), _VALUES, max_size=8),
                min_size=1, max_size=3), st.data())
@settings(max_examples=400, deadline=None)
def test_enqueue_fast_path_agrees_with_the_full_validation(tasks: list[dict[str, Any]],
                                                           data: st.DataObject) -> None:
    for task in tasks:  # mostly valid tasks, so the fast path is taken often
        if data.draw(st.booleans()):
            task.update(id="a", type="t")
    fast = _parse({"op": "enqueue", "tasks": tasks})
    full = _parse({"op": "enqueue", "tasks": [_Mapping(task) for task in tasks]})
    assert fast == full


@given(st.lists(st.dictionaries(st.sampled_from(["id", "worker_id", "token", "other"]),
                                _VALUES, max_size=4), min_size=1, max_size=3), st.data())
@settings(max_examples=300, deadline=None)
def test_ack_batch_fast_path_agrees_with_the_full_validation(items: list[dict[str, Any]],
                                                             data: st.DataObject) -> None:
    for item in items:
        if data.draw(st.booleans()):
            item.update(id="a", worker_id="w")
    fast = _parse({"op": "ack_batch", "items": items, "now_ms": 3})
    full = _parse({"op": "ack_batch", "items": [_Mapping(item) for item in items],
                   "now_ms": 3})
    assert fast == full


def test_flat_payloads_are_taken_by_the_fast_path() -> None:
    for payload in (None, "x", 3, True, [1, "a", None], {"to": "x", "n": 1}):
        assert dq.commands._is_flat_json(payload)
    for payload in (1.5, [1.5], {"a": [1]}, {1: "a"}, [[1]], _Mapping()):
        assert not dq.commands._is_flat_json(payload)


def test_unchecked_constructors_build_the_same_commands() -> None:
    # A field added to NewTask or Ack must be added to the unchecked constructors too.
    assert [f.name for f in dataclasses.fields(dq.NewTask)] == list(
        dq.commands._NEW_TASK_FIELDS)
    assert [f.name for f in dataclasses.fields(dq.Ack)] == list(dq.commands._ACK_FIELDS)
    payload = {"to": ["x"]}
    fast = dq.commands.new_task_unchecked("a", "t", payload, -3, 2, "k", 10)
    slow = dq.NewTask(id="a", type="t", payload=payload, priority=-3, max_retries=2,
                      idempotency_key="k", delay_ms=10)
    assert fast == slow and repr(fast) == repr(slow)
    assert type(fast) is dq.NewTask and fast.payload is payload
    assert dataclasses.replace(fast, priority=4) == dataclasses.replace(slow, priority=4)
    ack = dq.commands.ack_unchecked("a", "w", None, 7)
    assert ack == dq.Ack(id="a", worker_id="w", now_ms=7) and type(ack) is dq.Ack
    assert hash(ack) == hash(dq.Ack(id="a", worker_id="w", now_ms=7))
    for command in (fast, ack):
        with pytest.raises(dataclasses.FrozenInstanceError):
            command.id = "b"  # type: ignore[misc]


@pytest.mark.parametrize(("fields", "bad_field"), [
    ({"id": "a", "worker_id": "w"}, None), ({"id": "a", "worker_id": "w", "token": "3.1"}, None),
    ({"id": "a", "worker_id": "w", "token": ""}, "token"), ({"id": "", "worker_id": "w"}, "id"),
    ({"id": "a"}, "worker_id"), ({"id": "a", "worker_id": 5}, "worker_id"),
    ({"id": "x" * 257, "worker_id": "w"}, "id")])
def test_ack_fast_path_builds_the_ack_or_leaves_the_error_to_the_checks(
        fields: dict[str, Any], bad_field: str | None) -> None:
    got = _parse({"op": "ack", "now_ms": 4, **fields})
    if bad_field is None:
        assert got == dq.Ack(id=fields["id"], worker_id=fields["worker_id"],
                             token=fields.get("token"), now_ms=4)
    else:
        assert got[:2] == ("invalid", bad_field)
