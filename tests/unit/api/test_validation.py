"""api/validation.py: body parsing, the field checkers, and what HTTP adds to the queue's rules.

Every refusal is an ``ApiError`` whose ``field`` names the field at fault (with the prefix of a
batch item) and whose code is one of ``ErrorCode``.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
import falcon.testing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.api import validation as v
from dqueue.api.errors import ApiError
from dqueue.protocol.errors import ErrorCode
from dqueue.queue import fields
from tests.depth import examples


def _req(body: bytes = b"", content_type: str | None = "application/json",
         query: str = "", content_length: int | None = None) -> falcon.Request:
    headers = {} if content_type is None else {"Content-Type": content_type}
    if content_length is not None:
        headers["Content-Length"] = str(content_length)
    return falcon.testing.create_req(method="POST", path="/tasks", body=body, headers=headers,
                                     query_string=query)


def _refused(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    return info.value


# ----------------------------------------------------------------- read_json_body

def test_a_json_object_is_parsed_and_an_empty_body_is_an_empty_object():
    assert v.read_json_body(_req(b'{"a": [1, "x"]}'), 1_000) == {"a": [1, "x"]}
    assert v.read_json_body(_req(b"  \n"), 1_000) == {}
    assert v.read_json_body(_req(b"", content_type=None), 1_000) == {}


def test_a_json_suffix_media_type_and_utf16_text_are_json():
    assert v.read_json_body(_req(b'{"a": 1}', "application/problem+json"), 100) == {"a": 1}
    body = '{"a": "\u00e9"}'.encode("utf-16")
    assert v.read_json_body(_req(body, "application/json; charset=utf-16"), 100) == {"a": "\u00e9"}


@pytest.mark.parametrize("declared", [None, 11])
def test_a_body_over_the_limit_is_413_naming_the_body(declared):
    error = _refused(v.read_json_body, _req(b'{"a": "xyz"}', content_length=declared), 10)
    assert (error.status, error.code, error.field) == (
        falcon.HTTP_413, ErrorCode.BODY_TOO_LARGE, "body")
    assert "10" in error.message


def test_a_body_of_exactly_the_limit_is_read():
    body = b'{"a": "xy"}'
    assert v.read_json_body(_req(body), len(body)) == {"a": "xy"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          None])
def test_a_body_that_is_not_declared_json_is_415_naming_the_content_type(content_type):
    error = _refused(v.read_json_body, _req(b'{"a": 1}', content_type), 100)
    assert (error.status, error.code, error.field) == (
        falcon.HTTP_415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Content-Type")


@pytest.mark.parametrize("body", [b"{", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}',
                                  b"[1, 2]", b'"text"', b"3", b"\xff\xfe\xfd", b"[" * 100_000])
def test_invalid_json_or_not_an_object_is_invalid_json_naming_the_body(body):
    error = _refused(v.read_json_body, _req(body), 1 << 20)
    assert (error.status, error.code, error.field) == (
        falcon.HTTP_400, ErrorCode.INVALID_JSON, "body")


@pytest.mark.parametrize(("body", "field"), [
    (rb'{"payload": "\ud800"}', "payload"),
    (rb'{"tasks": [{"id": "a"}, {"id": "b\udc00c"}]}', "tasks[1].id"),
    (rb'{"payload": {"deep": ["ok", "\udfff"]}}', "payload.deep[1]"),
    (rb'{"\ud800": 1}', "body"),
])
def test_a_lone_surrogate_is_refused_naming_where_it_is(body, field):
    error = _refused(v.read_json_body, _req(body), 1_000)
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, field)


def test_a_surrogate_pair_is_text():
    assert v.read_json_body(_req(rb'{"a": "\ud83d\ude00"}'), 100) == {"a": "\U0001f600"}


@given(st.dictionaries(st.text(max_size=5), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3), max_leaves=10),
    max_size=4))
@settings(max_examples=examples(100), deadline=None)
def test_any_json_object_reads_back_as_itself(body):
    assert v.read_json_body(_req(json.dumps(body).encode()), 1 << 20) == body


# ----------------------------------------------------------------- check_keys

def test_check_keys_names_an_unknown_key_with_its_prefix():
    error = _refused(v.check_keys, {"id": "a", "colour": 1}, frozenset({"id"}), (), "tasks[2].")
    assert (error.code, error.field) == (ErrorCode.UNKNOWN_FIELD, "tasks[2].colour")


def test_check_keys_names_a_key_that_is_not_text_by_its_repr():
    error = _refused(v.check_keys, {7: "x"}, frozenset({"id"}))
    assert (error.code, error.field) == (ErrorCode.UNKNOWN_FIELD, "7")


@pytest.mark.parametrize("body", [{}, {"type": None}])
def test_check_keys_names_a_missing_or_null_required_key(body):
    error = _refused(v.check_keys, body, frozenset({"type"}), ("type",), "tasks[0].")
    assert (error.status, error.code, error.field) == (
        falcon.HTTP_400, ErrorCode.MISSING_FIELD, "tasks[0].type")


def test_check_keys_passes_known_and_present_keys():
    v.check_keys({"type": "t", "id": None}, frozenset({"type", "id"}), ("type",))


# ----------------------------------------------------------------- rule-checked fields

@pytest.mark.parametrize("name", ["id", "x"])
def test_an_absent_or_null_optional_field_is_none(name):
    body = {"id": None}
    assert v.opt_text(body, name, fields.TASK_ID) is None
    assert v.opt_field_int(body, name, fields.PRIORITY) is None
    assert v.opt_int(body, name, 1, 5) is None
    assert v.opt_seconds_ms(body, name, fields.LEASE_MS) is None
    assert v.opt_bool(body, name) is None
    assert v.opt_types(body, name) is None


@pytest.mark.parametrize(("rule", "value"), [
    (fields.TASK_ID, ""), (fields.TASK_ID, "x" * (fields.ID.max_chars + 1)),
    (fields.TASK_ID, "a\nb"), (fields.TASK_ID, 5), (fields.TASK_TYPE, "has space"),
    (fields.IDEMPOTENCY_KEY, "k\x00"), (fields.REASON, "r" * (fields.REASON.max_chars + 1)),
])
def test_opt_text_refuses_what_the_queue_rule_refuses_naming_the_field(rule, value):
    error = _refused(v.opt_text, {"f": value}, "f", rule, "tasks[4].")
    assert (error.status, error.code, error.field) == (
        falcon.HTTP_400, ErrorCode.INVALID_FIELD, "tasks[4].f")
    assert "tasks[4].f" in error.message


def test_opt_text_returns_what_the_rule_accepts():
    assert v.opt_text({"f": "ok-1"}, "f", fields.TASK_ID) == "ok-1"
    assert v.opt_text({"f": "line\nbreak"}, "f", fields.REASON) == "line\nbreak"


@pytest.mark.parametrize("value", [True, 1.0, "1", fields.PRIORITY.high + 1,
                                   fields.PRIORITY.low - 1])
def test_opt_field_int_refuses_what_is_not_an_integer_of_the_rule(value):
    error = _refused(v.opt_field_int, {"priority": value}, "priority", fields.PRIORITY, "t.")
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, "t.priority")


def test_opt_field_int_takes_both_bounds():
    for value in (fields.PRIORITY.low, fields.PRIORITY.high):
        assert v.opt_field_int({"p": value}, "p", fields.PRIORITY) == value


def test_opt_int_checks_the_channels_own_bounds():
    assert v.opt_int({"limit": v.MAX_LIST_LIMIT}, "limit", 1, v.MAX_LIST_LIMIT) == v.MAX_LIST_LIMIT
    error = _refused(v.opt_int, {"limit": v.MAX_LIST_LIMIT + 1}, "limit", 1, v.MAX_LIST_LIMIT)
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, "limit")


# ----------------------------------------------------------------- durations in seconds

def test_seconds_become_milliseconds():
    assert v.opt_seconds_ms({"d": 1.5}, "d", fields.DELAY_MS) == 1_500
    assert v.opt_seconds_ms({"d": 0}, "d", fields.DELAY_MS) == 0
    assert v.opt_seconds_ms({"d": fields.DELAY_MS.high // 1000}, "d",
                            fields.DELAY_MS) == fields.DELAY_MS.high


def test_a_rule_above_zero_refuses_zero_and_rounds_up_to_its_least():
    assert v.opt_seconds_ms({"l": 0.0001}, "l", fields.LEASE_MS) == fields.LEASE_MS.low
    error = _refused(v.opt_seconds_ms, {"l": 0}, "l", fields.LEASE_MS, "tasks[0].")
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, "tasks[0].l")
    assert "above 0" in error.message


@pytest.mark.parametrize("value", [-1, -0.001, fields.DELAY_MS.high / 1000 + 0.001,
                                   float("nan"), float("inf"), True, "5", [5]])
def test_a_duration_that_is_not_seconds_in_range_is_refused(value):
    error = _refused(v.opt_seconds_ms, {"delay": value}, "delay", fields.DELAY_MS)
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, "delay")


# ----------------------------------------------------------------- bool, types, payload

@pytest.mark.parametrize("value", [True, False])
def test_opt_bool_takes_a_boolean(value):
    assert v.opt_bool({"b": value}, "b") is value


@pytest.mark.parametrize("value", [0, 1, "true", []])
def test_opt_bool_refuses_anything_else(value):
    error = _refused(v.opt_bool, {"b": value}, "b", "x.")
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, "x.b")


def test_opt_types_keeps_the_first_of_each_type_in_order():
    assert v.opt_types({"types": ["b", "a", "b", "c", "a"]}) == ["b", "a", "c"]


@pytest.mark.parametrize(("value", "field"), [
    ([], "types"), ("a", "types"), (["t"] * (fields.MAX_TYPES + 1), "types"),
    (["ok", 3], "types[1]"), (["ok", "ok", "bad type"], "types[2]"),
])
def test_opt_types_names_the_list_or_the_bad_item(value, field):
    error = _refused(v.opt_types, {"types": value})
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, field)


def test_opt_types_takes_as_many_types_as_a_lease_may_name():
    many = [f"t{i}" for i in range(fields.MAX_TYPES)]
    assert v.opt_types({"types": many}) == many


def test_check_payload_names_the_field_it_was_given():
    v.check_payload({"a": [1, 2.5, None, "x"]})
    for bad in (float("nan"), {1: "x"}, b"raw", 1 << 64):
        error = _refused(v.check_payload, bad, "tasks[3].payload")
        assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, "tasks[3].payload")


def test_check_payload_refuses_nesting_deeper_than_the_queue_allows():
    payload: Any = "leaf"
    for _ in range(fields.MAX_PAYLOAD_DEPTH):
        payload = [payload]
    v.check_payload(payload)
    error = _refused(v.check_payload, [payload])
    assert error.field == "payload"


# ----------------------------------------------------------------- path and query

def test_a_path_id_that_cannot_be_an_id_is_not_found():
    assert v.task_id("t-1") == "t-1"
    for bad in ("", "x" * (fields.ID.max_chars + 1), "a\tb"):
        error = _refused(v.task_id, bad)
        assert (error.status, error.code, error.field) == (
            falcon.HTTP_404, ErrorCode.NOT_FOUND, "id")
        assert len(error.message) < 150  # a huge id is not echoed whole


def test_query_params_gives_each_known_parameter_once():
    req = _req(query="type=a&limit=5")
    assert v.query_params(req, frozenset({"type", "limit", "cursor"})) == {"type": "a",
                                                                           "limit": "5"}


def test_query_params_refuses_an_unknown_or_repeated_parameter():
    error = _refused(v.query_params, _req(query="colour=red"), frozenset({"type"}))
    assert (error.code, error.field) == (ErrorCode.UNKNOWN_FIELD, "colour")
    error = _refused(v.query_params, _req(query="type=a&type=b"), frozenset({"type"}))
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, "type")


# ----------------------------------------------------------------- HTTP's limits

def test_a_presented_lease_token_is_held_to_the_stricter_http_rule():
    # The log may hold tokens of up to 256 characters; a client presents at most 64.
    token = "k" * (fields.PRESENTED_LEASE_TOKEN.max_chars + 1)
    assert fields.LEASE_TOKEN.accepts(token)
    error = _refused(v.opt_text, {"lease_token": token}, "lease_token",
                     fields.PRESENTED_LEASE_TOKEN)
    assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, "lease_token")
    assert v.opt_text({"lease_token": token[1:]}, "lease_token",
                      fields.PRESENTED_LEASE_TOKEN) == token[1:]



def test_opt_queues_keeps_the_first_of_each_queue_and_names_a_bad_one():
    assert v.opt_queues({"queues": ["jobs", "default", "jobs"]}) == ["jobs", "default"]
    assert v.opt_queues({}) is None
    for value, field in (([], "queues"), (["q"] * (fields.MAX_QUEUES + 1), "queues"),
                         (["ok", "no spaces"], "queues[1]"), (["x" * 81], "queues[0]")):
        error = _refused(v.opt_queues, {"queues": value})
        assert (error.code, error.field) == (ErrorCode.INVALID_FIELD, field)
