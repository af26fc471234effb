"""Worker requests: the queue's field rules on the gateway, and the ack item fast path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.api.errors import ApiError
from dqueue.api.worker_requests import (
    RequestError,
    ack_items_of,
    check_ack_item,
    command_of,
    is_usual_ack_item,
)
from dqueue.queue import command_from_plain, fields
from tests.depth import examples
from tests.unit.msgpack_values import VALUES, maps_with

_TEXTS = st.sampled_from(["t-1", "w", "1.0", "ab" * 16 + ".0", "x" * 256, "x" * 257, "k" * 64,
                          "k" * 65, "", "a\nb", "é", "boom\n" * 900])
_FIELDS = ["rid", "id", "worker_id", "token", "reason", "dead_letter", "lease_ms", "wait_ms",
           "max_tasks", "types", "items", "traceback", "result", "retry_delay_ms"]
_BODIES = st.dictionaries(st.sampled_from(_FIELDS), _TEXTS | VALUES, max_size=6) | maps_with(
    _FIELDS)
_ITEMS = st.dictionaries(st.sampled_from(["id", "token", "worker_id", "result"]),
                         _TEXTS | VALUES, max_size=4) | VALUES


def _outcome(call: Any, *args: Any) -> Any:
    try:
        return ("ok", call(*args))
    except RequestError as exc:
        return ("refused", exc.code, exc.field, exc.message)
    except ApiError as exc:
        return ("refused", exc.code, exc.field, exc.message)


@given(_ITEMS, st.booleans())
@settings(max_examples=examples(1_000), deadline=None)
def test_usual_ack_items_pass_the_full_check(obj: Any, usual: bool) -> None:
    if usual and isinstance(obj, dict):
        obj = {**obj, "id": "t-1", "token": "1.0"}
    if is_usual_ack_item(obj):
        assert _outcome(check_ack_item, obj, "items[0].") == ("ok", None)


@given(st.lists(_ITEMS, min_size=1, max_size=4), _TEXTS | VALUES)
@settings(max_examples=examples(600), deadline=None)
def test_ack_items_are_what_the_full_check_of_every_item_gives(items: list[Any],
                                                              worker_id: Any) -> None:
    body = {"rid": "r", "worker_id": worker_id, "items": items}
    got = _outcome(ack_items_of, body)

    def reference() -> list[dict[str, Any]]:
        fields.WORKER_ID.check(worker_id, "worker_id")
        for position, obj in enumerate(items):
            check_ack_item(obj, f"items[{position}].")
        return [{"id": obj["id"], "worker_id": worker_id, "token": obj["token"],
                 **({} if obj.get("result") is None else {"result": obj["result"]})}
                for obj in items]

    try:
        expected = ("ok", reference())
    except (fields.InvalidCommand, RequestError, ApiError):
        expected = None
    if expected is None:
        assert got[0] == "refused"
    else:
        assert got == expected
        # The gateway is never looser than the queue.
        command_from_plain({"op": "ack_batch", "items": got[1]})


@given(st.sampled_from([b"lease", b"ack", b"nack", b"extend"]), _BODIES, st.booleans())
@settings(max_examples=examples(1_000), deadline=None)
def test_every_command_the_gateway_builds_is_one_the_queue_accepts(
        kind: bytes, body: dict[str, Any], usual: bool) -> None:
    if usual:
        body = {**body, "id": "t-1", "worker_id": "w", "token": "1.0"}
    got = _outcome(command_of, kind, body, 20_000)
    if got[0] == "ok":
        cmd, wait_ms = got[1]
        command_from_plain(cmd)
        assert 0 <= wait_ms <= 20_000


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "x" * 257, "worker_id": "w", "token": "1.0"}, "id"),
    ({"id": "a\nb", "worker_id": "w", "token": "1.0"}, "id"),
    ({"id": "t", "worker_id": "w" * 257, "token": "1.0"}, "worker_id"),
    ({"id": "t", "worker_id": "w", "token": "k" * 65}, "token"),
    ({"id": "t", "worker_id": "w", "token": "1.0", "reason": "r" * 4_097}, "reason"),
    ({"id": "t", "worker_id": "w", "token": "1.0", "reason": "E", "traceback": "t" * 2_049},
     "traceback"),
    ({"id": "t", "worker_id": "w", "token": "1.0", "reason": "E", "traceback": 5},
     "traceback"),
    ({"id": "t", "worker_id": "w", "token": "1.0", "reason": "E", "retry_delay_ms": -1},
     "retry_delay_ms"),
    ({"id": "t", "worker_id": "w", "token": "1.0", "reason": "E", "retry_delay_ms": True},
     "retry_delay_ms"),
    ({"id": "t", "worker_id": "w", "token": "1.0", "lease_ms": 12 * 3_600_000 + 1},
     "lease_ms"),
])
def test_the_gateway_refuses_beyond_the_documented_limits(body: dict[str, Any],
                                                          field: str) -> None:
    kind = b"nack" if "reason" in body else b"extend" if "lease_ms" in body else b"ack"
    with pytest.raises(RequestError) as info:
        command_of(kind, body, 1_000)
    assert info.value.field == field and info.value.code == "invalid_field"


def test_ids_of_256_characters_and_tracebacks_pass_the_gateway() -> None:
    # The gateway took task ids of 128 characters at most, HTTP 256: both take 256 now.
    cmd, _ = command_of(b"nack", {"id": "x" * 256, "worker_id": "w", "token": "1.0",
                                  "reason": "Traceback:\n\tline 1\n"}, 1_000)
    assert cmd["id"] == "x" * 256 and cmd["reason"].startswith("Traceback")
    items = ack_items_of({"worker_id": "w", "items": [{"id": "x" * 256, "token": "1.0"}]})
    assert items == [{"id": "x" * 256, "worker_id": "w", "token": "1.0"}]


def test_a_nack_traceback_of_2048_characters_passes_the_gateway() -> None:
    text = "File x\n" * 292 + "E: boom"  # 2,051 characters: one too many
    text = text[-2_048:]
    cmd, _ = command_of(b"nack", {"id": "t", "worker_id": "w", "token": "1.0", "reason": "E",
                                  "traceback": text}, 1_000)
    assert cmd["traceback"] == text
    assert command_from_plain(cmd).traceback == text  # type: ignore[union-attr]
    cmd, _ = command_of(b"nack", {"id": "t", "worker_id": "w", "token": "1.0"}, 1_000)
    assert "traceback" not in cmd


def test_an_ack_result_is_bounded_by_the_nodes_max_result_bytes() -> None:
    body = {"id": "t", "worker_id": "w", "token": "1.0", "result": "x" * 1_022}  # 1,024 bytes
    cmd, _ = command_of(b"ack", body, 1_000, max_result_bytes=1_024)
    assert cmd["result"] == "x" * 1_022
    with pytest.raises(RequestError) as info:
        command_of(b"ack", {**body, "result": "x" * 1_023}, 1_000, max_result_bytes=1_024)
    assert info.value.field == "result" and "1025 bytes" in info.value.message
    with pytest.raises(RequestError) as info:
        command_of(b"ack", {**body, "result": b"raw"}, 1_000)
    assert info.value.field == "result"
    with pytest.raises(RequestError) as info:  # a release carries no result
        command_of(b"release", body, 1_000)
    assert info.value.field == "result"


def test_an_ack_many_item_result_is_bounded_and_named_by_position() -> None:
    items = [{"id": "a", "token": "1.0", "result": {"n": 1}},
             {"id": "b", "token": "1.1"}]
    got = ack_items_of({"worker_id": "w", "items": items}, max_result_bytes=1_024)
    assert got == [{"id": "a", "worker_id": "w", "token": "1.0", "result": {"n": 1}},
                   {"id": "b", "worker_id": "w", "token": "1.1"}]
    items[1]["result"] = "x" * 1_023
    with pytest.raises(RequestError) as info:
        ack_items_of({"worker_id": "w", "items": items}, max_result_bytes=1_024)
    assert info.value.field == "items[1].result"


_BEAT = {"rid": 7, "worker_id": "w1", "host": "box", "pid": 99, "queues": ["default"],
         "types": ["email"], "concurrency": 2, "in_flight": 1, "started_at_ms": 1_000,
         "heartbeat_ms": 5_000}


def test_a_heartbeat_becomes_the_worker_heartbeat_command_over_zmq() -> None:
    cmd, wait_ms = command_of(b"heartbeat", dict(_BEAT), 5_000)
    assert wait_ms == 0 and cmd["op"] == "worker_heartbeat"
    assert cmd["transport"] == "zmq" and cmd["leaving"] is False and "rid" not in cmd
    assert command_from_plain(cmd).info.worker_id == "w1"
    leaving, _ = command_of(b"heartbeat", {**_BEAT, "leaving": True}, 5_000)
    assert leaving["leaving"] is True


@pytest.mark.parametrize(("changes", "field"), [
    ({"pid": "99"}, "pid"), ({"host": ""}, "host"), ({"heartbeat_ms": 1}, "heartbeat_ms"),
    ({"queues": [""]}, "queues[0]"), ({"transport": "http"}, "transport"),
    ({"leaving": 1}, "leaving"), ({"worker_id": None}, "worker_id"),
])
def test_a_bad_heartbeat_is_refused_naming_the_field(changes: dict[str, Any],
                                                     field: str) -> None:
    body = {key: value for key, value in {**_BEAT, **changes}.items() if value is not None}
    with pytest.raises(RequestError) as caught:
        command_of(b"heartbeat", body, 5_000)
    assert caught.value.field == field


def test_with_worker_keys_a_heartbeat_is_only_for_the_key_s_worker() -> None:
    command_of(b"heartbeat", dict(_BEAT), 5_000, worker_name="w1")
    with pytest.raises(RequestError) as caught:
        command_of(b"heartbeat", dict(_BEAT), 5_000, worker_name="w2")
    assert caught.value.code == "forbidden" and caught.value.field == "worker_id"


def test_the_gateway_passes_a_nack_retry_delay_on() -> None:
    body = {"id": "t", "worker_id": "w", "token": "1.0", "reason": "E", "retry_delay_ms": 1_500}
    cmd, _ = command_of(b"nack", body, 1_000)
    assert cmd["retry_delay_ms"] == 1_500
    cmd, _ = command_of(b"nack", {**body, "retry_delay_ms": None}, 1_000)
    assert "retry_delay_ms" not in cmd
