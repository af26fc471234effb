"""Results on acks, kept on the completed task and in snapshots (format 4; 3 still restores)."""

from __future__ import annotations

import json

import pytest

import dqueue.queue as dq
from dqueue.queue.commands import command_from_plain
from dqueue.queue.fields import MAX_TRACEBACK_CHARS
from dqueue.queue.log_commands import command_from_log
from dqueue.queue.results import checked_result, result_bytes, result_problem, traceback_tail

CONFIG = dq.QueueConfig(lease_ms=10_000, retention_ms=100_000)
NONCE = "0123456789abcdef" * 2
RESULT = {"sent": True, "ids": [1, 2, 3], "note": "é"}


def _completed(result: object) -> dq.QueueState:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="a", type="t"), dq.NewTask(id="b", type="t")),
                           now_ms=1_000), 1)
    outcome = state.apply(dq.Lease(worker_id="w", max_tasks=2, nonce=NONCE, now_ms=2_000), 2)
    assert outcome is not None
    token = outcome["value"]["tasks"][0]["lease"]["token"]
    acked = state.apply(command_from_plain({"op": "ack", "id": "a", "worker_id": "w",
                                            "token": token, "result": result,
                                            "now_ms": 3_000}), 3)
    assert acked is not None and acked["ok"], acked
    return state


def test_an_ack_keeps_its_result_on_the_completed_task() -> None:
    state = _completed(RESULT)
    task = state.get_task("a")
    assert task is not None and task["status"] == "completed" and task["result"] == RESULT
    other = state.get_task("b")
    assert other is not None and "result" not in other  # no result: no key


def test_the_result_survives_the_log_and_a_snapshot() -> None:
    plain = {"op": "ack", "id": "a", "worker_id": "w", "token": "x.0", "result": [1],
             "now_ms": 5}
    assert command_from_log(plain) == command_from_plain(plain)
    assert command_from_plain(plain).to_plain()["result"] == [1]
    state = _completed(RESULT)
    data = state.snapshot()
    assert json.loads(data)["format"] == 4
    copy = dq.QueueState(CONFIG)
    copy.restore(data)
    assert copy.get_task("a") == state.get_task("a") and copy.snapshot() == data


def test_a_format_3_snapshot_restores_without_results() -> None:
    state = _completed(None)
    document = json.loads(state.snapshot())
    document["format"] = 3
    for column in ("result", "last_traceback"):
        del document["tasks"][column]
    copy = dq.QueueState(CONFIG)
    copy.restore(json.dumps(document, separators=(",", ":")).encode())
    assert copy.get_task("a") == state.get_task("a")
    assert copy.snapshot() == state.snapshot()  # written again as format 4


def test_a_bad_last_traceback_column_is_refused() -> None:
    document = json.loads(_completed(None).snapshot())
    document["tasks"]["last_traceback"][0] = 5
    with pytest.raises(ValueError):
        dq.QueueState(CONFIG).restore(json.dumps(document).encode())


def test_result_size_and_traceback_tail() -> None:
    assert result_bytes({"a": "é"}) == len('{"a":"é"}'.encode())
    with pytest.raises(ValueError):
        result_bytes(float("nan"))
    text = "\n".join(f"line {i}" for i in range(1_000))
    tail = traceback_tail(text, 100)
    assert len(tail) <= 100 and tail.endswith("line 999") and tail.startswith("line ")
    assert traceback_tail("short") == "short"


@pytest.mark.parametrize("result", [b"raw", float("nan"), {1: "int key"}, 2 ** 70])
def test_an_ack_whose_result_is_not_json_is_an_invalid_command(result: object) -> None:
    with pytest.raises(dq.InvalidCommand) as info:
        command_from_plain({"op": "ack", "id": "a", "worker_id": "w", "result": result,
                            "now_ms": 1})
    assert info.value.field == "result"


def test_result_problem_accepts_json_up_to_the_limit_counted_as_compact_utf8() -> None:
    assert result_problem(None) is None and result_problem({"a": [1, "x"]}) is None
    exact = "é" * 511  # 1,022 bytes of UTF-8, plus two quotes: 1,024
    assert result_bytes(exact) == 1_024
    assert result_problem(exact, 1_024) is None
    problem = result_problem(exact + "a", 1_024)
    assert problem is not None and problem.startswith("result: 1025 bytes")
    assert "max_result_bytes 1024" in problem
    assert result_problem("x" * 70_000) is not None  # the default: 64 KiB
    assert result_problem("x" * 60_000) is None


@pytest.mark.parametrize("value", [b"raw", float("nan"), float("inf"), {1: "int key"}, 2 ** 70,
                                   object(), {"a": {1, 2}}])
def test_result_problem_names_result_when_the_value_is_not_json(value: object) -> None:
    problem = result_problem(value)
    assert problem is not None and problem.startswith("result")


def test_result_problem_refuses_a_result_nested_too_deep() -> None:
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    problem = result_problem(deep)
    assert problem is not None and "result" in problem


def test_checked_result_names_the_prefixed_field() -> None:
    assert checked_result({"result": [1]}) == [1]
    assert checked_result({}) is None
    with pytest.raises(dq.InvalidCommand) as info:
        checked_result({"result": float("nan")}, "items[2].")
    assert info.value.field == "items[2].result"


def test_a_nack_traceback_is_kept_bounded_and_cleared_by_the_next_failure() -> None:
    state = dq.QueueState(dq.QueueConfig(lease_ms=10_000, max_retries=5))
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="a", type="t"),), now_ms=1_000), 1)
    lease = state.apply(dq.Lease(worker_id="w", nonce=NONCE, now_ms=1_000), 2)
    assert lease is not None
    token = lease["value"]["tasks"][0]["lease"]["token"]
    text = "x" * MAX_TRACEBACK_CHARS
    nacked = state.apply(command_from_plain({"op": "nack", "id": "a", "worker_id": "w",
                                             "token": token, "reason": "E: boom",
                                             "traceback": text, "now_ms": 1_000}), 3)
    assert nacked is not None and nacked["value"]["task"]["last_traceback"] == text
    # The lease of the retry expires: a failure without a traceback clears it.
    state.apply(dq.Lease(worker_id="w", nonce=NONCE[::-1], lease_ms=1_000, now_ms=60_000), 4)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="b", type="t"),), now_ms=62_000), 5)
    task = state.get_task("a")
    assert task is not None and task["last_error"] == "lease expired"
    assert "last_traceback" not in task
    with pytest.raises(dq.InvalidCommand) as info:
        command_from_plain({"op": "nack", "id": "a", "worker_id": "w", "reason": "E",
                            "traceback": text + "x", "now_ms": 1})
    assert info.value.field == "traceback"
