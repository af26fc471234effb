"""The field rules of the queue's commands: bounds, and cheap checks that agree with full ones."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.queue import fields
from dqueue.queue.fields import IntRule, InvalidCommand, TextRule
from tests.depth import examples
from tests.unit.plain_values import PLAIN

TEXT_RULES = {"ID": fields.ID, "TASK_TYPE": fields.TASK_TYPE, "REASON": fields.REASON}
INT_RULES = {"PRIORITY": fields.PRIORITY, "MAX_RETRIES": fields.MAX_RETRIES,
             "DELAY_MS": fields.DELAY_MS, "LEASE_MS": fields.LEASE_MS,
             "LEASE_MAX_TASKS": fields.LEASE_MAX_TASKS, "NOW_MS": fields.NOW_MS}


class _Str(str):
    """A str subclass: never taken by ``accepts`` (exact types only), still text to ``check``."""


def _checked(rule: TextRule | IntRule, value: Any) -> Any:
    try:
        return ("ok", rule.check(value, "f"))
    except InvalidCommand as exc:
        assert exc.field == "f" and exc.message.startswith("f ")
        return ("invalid", exc.message)


_TEXTS = st.one_of(
    st.text(max_size=6), st.text(alphabet=st.characters(exclude_categories=()), max_size=6),
    st.sampled_from(["", "a", "email", "a.b:c/d-e_f", "-a", "a b", "a\n", "\x7f", "é", "a\x00",
                     "x" * 128, "x" * 129, "x" * 256, "x" * 257, "y" * 4_096, "y" * 4_097,
                     "\u200b", "tab\there"]),
)
_INTS = st.one_of(
    st.integers(), st.booleans(),
    st.sampled_from([bound + delta for rule in INT_RULES.values()
                     for bound in (rule.low, rule.high) for delta in (-1, 0, 1)]),
)


@pytest.mark.parametrize("name", TEXT_RULES)
@given(value=_TEXTS | PLAIN)
@settings(max_examples=examples(300), deadline=None)
def test_text_accepts_exactly_what_check_returns_unchanged(name: str, value: Any) -> None:
    rule = TEXT_RULES[name]
    got = _checked(rule, value)
    assert rule.accepts(value) == (type(value) is str and got == ("ok", value))
    if isinstance(value, str):
        # A subclass of str is checked by the same rule (and never taken by the fast check).
        assert _checked(rule, _Str(value))[0] == got[0]
        assert not rule.accepts(_Str(value))


@pytest.mark.parametrize("name", INT_RULES)
@given(value=_INTS | PLAIN)
@settings(max_examples=examples(300), deadline=None)
def test_int_accepts_exactly_what_check_returns_unchanged(name: str, value: Any) -> None:
    rule = INT_RULES[name]
    got = _checked(rule, value)
    assert rule.accepts(value) == (type(value) is int and got == ("ok", value))
    if type(value) is int:
        assert (got[0] == "ok") == (rule.low <= value <= rule.high)
    if isinstance(value, bool):
        assert got[0] == "invalid"  # true is not 1 here


@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=12))
@settings(max_examples=examples(500), deadline=None)
def test_control_characters_are_c0_and_del(value: str) -> None:
    # The isascii()/isprintable() shortcut agrees with the definition, for any text.
    naive = any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
    assert fields.has_control_chars(value) == naive


@pytest.mark.parametrize(("rule", "good", "bad"), [
    (fields.ID, ["a", "x" * 256, "é", "a b", "\u200b"], ["", "x" * 257, "a\nb", "\x00", "\x7f"]),
    (fields.TASK_TYPE, ["email", "a.b:c/d-e_f", "0", "x" * 128],
     ["", "-a", "a b", "x" * 129, "é", "a\n"]),
    (fields.REASON, ["", "boom", "Traceback:\n  line 1\n", "y" * 4_096], ["y" * 4_097]),
])
def test_text_rules_bounds(rule: TextRule, good: list[str], bad: list[str]) -> None:
    for value in good:
        assert rule.check(value, "f") == value and rule.accepts(value)
    for value in bad:
        with pytest.raises(InvalidCommand):
            rule.check(value, "f")
        assert not rule.accepts(value)


def test_the_documented_limits() -> None:
    # docs/http-api.md, "Limits": a change here is a change of the documented limits.
    assert (fields.ID.min_chars, fields.ID.max_chars) == (1, 256)
    assert fields.TASK_TYPE.max_chars == 128
    assert fields.REASON.max_chars == 4_096
    assert (fields.PRIORITY.low, fields.PRIORITY.high) == (-(2 ** 31), 2 ** 31 - 1)
    assert (fields.MAX_RETRIES.low, fields.MAX_RETRIES.high) == (0, 1_000)
    assert fields.DELAY_MS.high == 7 * 24 * 3_600 * 1_000
    assert (fields.LEASE_MS.low, fields.LEASE_MS.high) == (1, 12 * 3_600 * 1_000)
    assert fields.LEASE_MAX_TASKS.high == 100
    assert (fields.MAX_BATCH, fields.MAX_TYPES, fields.MAX_PAYLOAD_DEPTH) == (1_000, 64, 32)


# ---------------------------------------------------------------- payloads

_JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.text(max_size=3), st.floats(),
    st.integers(min_value=-(1 << 65), max_value=1 << 65),
    st.sampled_from([fields.PAYLOAD_INT_MIN, fields.PAYLOAD_INT_MAX, fields.PAYLOAD_INT_MIN - 1,
                     fields.PAYLOAD_INT_MAX + 1]),
)
_PAYLOADS = st.one_of(
    st.recursive(_JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.text(max_size=3), inner, max_size=4), max_leaves=12),
    PLAIN,
)


def _naive_payload_ok(value: Any, depth: int = 0) -> bool:
    """The payload rule as plainly as it can be said (recursive: fine for test values)."""
    if value is None or type(value) in (str, bool):
        return True
    if type(value) is int:
        return -(1 << 63) <= value <= (1 << 64) - 1
    if type(value) is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if type(value) is list:
        return depth < 32 and all(_naive_payload_ok(item, depth + 1) for item in value)
    if type(value) is dict:
        return depth < 32 and all(type(key) is str and _naive_payload_ok(item, depth + 1)
                                  for key, item in value.items())
    return False


def _payload_ok(value: Any) -> bool:
    try:
        fields.check_payload(value, "payload")
    except InvalidCommand as exc:
        assert exc.field == "payload"
        return False
    return True


@given(_PAYLOADS)
@settings(max_examples=examples(500), deadline=None)
def test_payload_check_is_the_naive_rule_and_flat_payloads_pass_it(value: Any) -> None:
    ok = _payload_ok(value)
    assert ok == _naive_payload_ok(value)
    if fields.is_flat_payload(value):
        assert ok


@pytest.mark.parametrize("depth", [31, 32, 33, 10_000])
def test_payload_depth_is_bounded_without_recursion(depth: int) -> None:
    payload: Any = 1
    for _ in range(depth):
        payload = [payload] if depth % 2 else {"k": payload}
    assert _payload_ok(payload) == (depth <= 32)


def test_flat_payloads_are_recognised_cheaply() -> None:
    for payload in (None, "x", 3, True, [1, "a", None], {"to": "x", "n": 1}, [],
                    [(1 << 64) - 1]):
        assert fields.is_flat_payload(payload)
    for payload in (1.5, [1.5], {"a": [1]}, {1: "a"}, [[1]], [1 << 64], 1 << 64, (1, 2),
                    b"x", {"a": b"x"}):
        assert not fields.is_flat_payload(payload)
