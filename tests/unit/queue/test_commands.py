"""Plain forms of the commands: round trips, defaults, and rejection naming the field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dqueue.queue as dq
from dqueue.queue import fields
from dqueue.queue.log_commands import command_from_log
from tests.depth import examples
from tests.unit.plain_values import PLAIN

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
    # The limits every channel enforces (docs/http-api.md, "Limits").
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "priority": 1 << 31}]},
     "tasks[0].priority"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "max_retries": 1_001}]},
     "tasks[0].max_retries"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "delay_ms": 7 * 86_400_000 + 1}]},
     "tasks[0].delay_ms"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "bad type"}]}, "tasks[0].type"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "x" * 129}]}, "tasks[0].type"),
    ({"op": "enqueue", "tasks": [{"id": "a\x00", "type": "t"}]}, "tasks[0].id"),
    ({"op": "enqueue", "tasks": [{"id": "x" * 257, "type": "t"}]}, "tasks[0].id"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "idempotency_key": "k\n"}]},
     "tasks[0].idempotency_key"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "payload": [1 << 64]}]},
     "tasks[0].payload"),
    ({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "payload": [[[[[[[[[[[[[[[[[[[[[
        [[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}, "tasks[0].payload"),
    ({"op": "lease"}, "worker_id"),
    ({"op": "lease", "worker_id": "w", "types": []}, "types"),
    ({"op": "lease", "worker_id": "w", "types": ["a", 3]}, "types[1]"),
    ({"op": "lease", "worker_id": "w", "types": ["a b"]}, "types[0]"),
    ({"op": "lease", "worker_id": "w", "types": ["a"] * 65}, "types"),
    ({"op": "lease", "worker_id": "w", "nonce": "ab"}, "nonce"),
    ({"op": "lease", "worker_id": "w\n"}, "worker_id"),
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
    ({"op": "nack", "id": "a", "worker_id": "w", "reason": "x" * 4_097}, "reason"),
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


_BOUNDS = [bound + delta for rule in (fields.PRIORITY, fields.MAX_RETRIES, fields.DELAY_MS,
                                      fields.LEASE_MS, fields.NOW_MS)
           for bound in (rule.low, rule.high) for delta in (-1, 0, 1)]
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(1 << 64), max_value=1 << 64),
    st.sampled_from(_BOUNDS), st.text(max_size=3),
    st.sampled_from(["x" * 128, "x" * 129, "x" * 256, "x" * 257, "a b", "a\n", "\x7f", "é",
                     "-a", "t.v:1/a-b_c"]),
    st.floats(),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=2), st.floats(),
                       st.sampled_from([1 << 64, -(1 << 63) - 1, (1 << 64) - 1])),
             max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=2), st.integers()),
                    st.one_of(st.none(), st.text(max_size=2), st.booleans(), st.floats(),
                              st.lists(st.integers(), max_size=2)), max_size=3),
    PLAIN)
_TASK_FIELDS = ["id", "type", "payload", "priority", "max_retries", "idempotency_key",
                "delay_ms", "other"]


def _parse(plain: dict[str, Any]) -> Any:
    try:
        return dq.command_from_plain(plain)
    except dq.InvalidCommand as exc:
        return ("invalid", exc.field, exc.message)


@given(st.lists(st.dictionaries(st.sampled_from(_TASK_FIELDS), _VALUES, max_size=8),
                min_size=1, max_size=3), st.data())
@settings(max_examples=examples(500), deadline=None)
def test_enqueue_fast_path_agrees_with_the_full_validation(tasks: list[dict[str, Any]],
                                                           data: st.DataObject) -> None:
    for task in tasks:  # mostly valid tasks, so the fast path is taken often
        if data.draw(st.booleans()):
            task.update(id="a", type="t")
    fast = _parse({"op": "enqueue", "tasks": tasks})
    full = _parse({"op": "enqueue", "tasks": [_Mapping(task) for task in tasks]})
    assert fast == full
    if not isinstance(fast, tuple):
        # What the fast path built is what the slow constructor builds, field for field.
        assert fast.tasks == tuple(dq.NewTask(**vars_of(task)) for task in fast.tasks)


def vars_of(task: dq.NewTask) -> dict[str, Any]:
    return {f.name: getattr(task, f.name) for f in dataclasses.fields(task)}


@given(st.lists(st.dictionaries(st.sampled_from(["id", "worker_id", "token", "other"]),
                                _VALUES, max_size=4), min_size=1, max_size=3), st.data())
@settings(max_examples=examples(300), deadline=None)
def test_ack_batch_fast_path_agrees_with_the_full_validation(items: list[dict[str, Any]],
                                                             data: st.DataObject) -> None:
    for item in items:
        if data.draw(st.booleans()):
            item.update(id="a", worker_id="w")
    fast = _parse({"op": "ack_batch", "items": items, "now_ms": 3})
    full = _parse({"op": "ack_batch", "items": [_Mapping(item) for item in items],
                   "now_ms": 3})
    assert fast == full


@given(st.dictionaries(st.sampled_from(["id", "worker_id", "token", "now_ms", "other"]),
                       _VALUES, max_size=5), st.booleans())
@settings(max_examples=examples(300), deadline=None)
def test_ack_fast_path_agrees_with_the_full_validation(fields_: dict[str, Any],
                                                       valid_ids: bool) -> None:
    if valid_ids:
        fields_.update(id="a", worker_id="w")
    fast = _parse({"op": "ack", **fields_})
    full = _parse(_Mapping({"op": "ack", **fields_}))
    assert fast == full
    try:
        slow = dq.commands._ack_checked(_Mapping(fields_), 0)
    except dq.InvalidCommand:
        slow = None
    built = dq.commands._ack_fast(fields_, 0)
    assert built is None or built == slow


@given(st.dictionaries(st.sampled_from(["op", "now_ms", "tasks", "items", "id", "worker_id",
                                        "token", "types", "max_tasks", "lease_ms", "nonce",
                                        "reason", "dead_letter", "type", "settings"]),
                       _VALUES, max_size=6), st.sampled_from(
    ["enqueue", "lease", "ack", "ack_batch", "nack", "extend", "cancel", "redrive", "purge",
     "tick", "configure", None, 3]))
@settings(max_examples=examples(500), deadline=None)
def test_any_plain_value_is_a_command_or_invalid_command(plain: dict[str, Any],
                                                         op: Any) -> None:
    plain["op"] = op
    got = _parse(plain)
    if not isinstance(got, tuple):
        # A command that parses round-trips through its plain form.
        assert dq.command_from_plain(got.to_plain()) == got


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
    ({"id": "x" * 257, "worker_id": "w"}, "id"), ({"id": "a\n", "worker_id": "w"}, "id")])
def test_ack_fast_path_builds_the_ack_or_leaves_the_error_to_the_checks(
        fields: dict[str, Any], bad_field: str | None) -> None:
    got = _parse({"op": "ack", "now_ms": 4, **fields})
    if bad_field is None:
        assert got == dq.Ack(id=fields["id"], worker_id=fields["worker_id"],
                             token=fields.get("token"), now_ms=4)
    else:
        assert got[:2] == ("invalid", bad_field)


# ---------------------------------------------------------------- committed entries

_COMMAND_KEYS = ["op", "now_ms", "tasks", "items", "id", "worker_id", "token", "types",
                 "max_tasks", "lease_ms", "nonce", "reason", "dead_letter", "type"]
_TASKS = st.lists(st.dictionaries(st.sampled_from(_TASK_FIELDS), _VALUES, max_size=8)
                  .map(lambda task: {"id": "a", "type": "t", **task}), min_size=1, max_size=3)
_ITEMS = st.lists(st.dictionaries(st.sampled_from(["id", "worker_id", "token"]), _VALUES,
                                  max_size=3).map(lambda item: {"id": "a", "worker_id": "w",
                                                                **item}), min_size=1, max_size=3)


@given(st.dictionaries(st.sampled_from(_COMMAND_KEYS), _VALUES, max_size=6),
       st.sampled_from(["enqueue", "lease", "ack", "ack_batch", "nack", "extend", "cancel",
                        "tick"]), _TASKS, _ITEMS, st.booleans())
@settings(max_examples=examples(800), deadline=None)
def test_command_from_log_never_differs_from_the_validating_parser(
        plain: dict[str, Any], op: str, tasks: list[dict[str, Any]],
        items: list[dict[str, Any]], usual: bool) -> None:
    plain["op"] = op
    if usual:  # the shapes the leader writes, with any values in their fields
        plain.update(id="a", worker_id="w", tasks=tasks, items=items)
    checked = _parse(plain)
    try:
        logged = command_from_log(plain)
    except dq.InvalidCommand as exc:
        logged = ("invalid", exc.field, exc.message)
    if not isinstance(checked, tuple):
        assert logged == checked  # every command the leader may append is read back equal
    elif isinstance(logged, tuple):
        assert logged == checked  # what it does not rebuild, the validating parser refuses


_VALID = [
    {"op": "enqueue", "tasks": [{"id": "a", "type": "t", "priority": 3}, {"id": "b",
                                                                       "type": "u"}]},
    {"op": "lease", "worker_id": "w", "types": ["t"], "max_tasks": 2},
    {"op": "ack", "id": "a", "worker_id": "w", "token": "k"},
    {"op": "ack_batch", "items": [{"id": "a", "worker_id": "w", "token": "k"},
                                  {"id": "b", "worker_id": "w", "token": None}]},
    {"op": "nack", "id": "a", "worker_id": "w", "token": "k", "reason": "boom"},
    {"op": "extend", "id": "a", "worker_id": "w", "token": "k", "lease_ms": 5},
    {"op": "cancel", "id": "a"}, {"op": "redrive", "type": "t"}, {"op": "purge"},
    {"op": "tick"},
]


@pytest.mark.parametrize("plain", _VALID, ids=[p["op"] for p in _VALID])
@given(now_ms=st.integers(0, fields.NOW_MS.high), before_ms=st.integers(0, 10))
@settings(max_examples=examples(30), deadline=None)
def test_stamped_is_the_parse_of_the_stamped_plain_form(plain: dict[str, Any], now_ms: int,
                                                        before_ms: int) -> None:
    nonce = "ab" * 16 if plain["op"] == "lease" else None
    parsed = dq.command_from_plain({**plain, "now_ms": before_ms})
    stamped_plain = {**plain, "now_ms": now_ms, **({"nonce": nonce} if nonce else {})}
    assert dq.commands.stamped(parsed, now_ms, nonce) == dq.command_from_plain(stamped_plain)
    if isinstance(parsed, dq.AckBatch):
        got = dq.commands.stamped(parsed, now_ms)
        assert [item.now_ms for item in got.items] == [now_ms] * len(parsed.items)


def _nested(depth: int) -> Any:
    payload: Any = "leaf"
    for _ in range(depth):
        payload = [payload]
    return payload


# Items as every earlier version's edges let them into the log, at those edges' extremes: HTTP
# and the worker gateway before this schema (ids and keys of 256, gateway tokens of 256, a
# gateway nack's empty reason, HTTP's 32-bit priority, 1,000 retries, 7-day delay, payloads 32
# deep with 64-bit integers, 64 types, 128-character types, lease tokens "<index>.<position>").
_OLD_LOG_ITEMS = [
    {"op": "enqueue", "now_ms": 1, "tasks": [
        {"id": "0" * 32, "type": "a" * 128, "payload": {"n": (1 << 64) - 1, "m": -(1 << 63)},
         "priority": (1 << 31) - 1, "max_retries": 1_000, "idempotency_key": "k" * 256},
        {"id": "1" * 32, "type": "a.b:c/d-e_f", "priority": -(1 << 31), "max_retries": 0,
         "delay_ms": 7 * 86_400_000, "payload": _nested(32)}]},
    {"op": "lease", "now_ms": 2, "worker_id": "w" * 256, "types": [f"t{n}" for n in range(64)],
     "max_tasks": 100, "lease_ms": 12 * 3_600_000},
    {"op": "ack", "now_ms": 3, "id": "x" * 128, "worker_id": "w" * 256, "token": "t" * 256},
    {"op": "ack", "now_ms": 3, "id": "x", "worker_id": "w", "token": "12.0"},
    {"op": "ack_batch", "now_ms": 3, "items": [{"id": "x" * 128, "worker_id": "w" * 256,
                                                "token": "t" * 256}]},
    {"op": "nack", "now_ms": 4, "id": "x" * 128, "worker_id": "w", "token": None,
     "reason": "", "dead_letter": False},
    {"op": "nack", "now_ms": 4, "id": "x", "worker_id": "w", "token": "9.1",
     "reason": "Traceback\n\t" + "r" * 4_000, "dead_letter": True},
    {"op": "extend", "now_ms": 5, "id": "x", "worker_id": "w", "token": "t" * 256,
     "lease_ms": 1},
    {"op": "cancel", "now_ms": 6, "id": "x" * 128},
    {"op": "redrive", "now_ms": 7, "id": "x" * 128, "type": None},
    {"op": "purge", "now_ms": 8, "type": "a" * 128},
]


@pytest.mark.parametrize("plain", _OLD_LOG_ITEMS, ids=lambda p: p["op"])
def test_log_items_every_earlier_version_wrote_still_parse(plain: dict[str, Any]) -> None:
    command = dq.command_from_plain(plain)
    assert command_from_log(plain) == command
