"""Results on acks, kept on the completed task and in snapshots (format 4; 3 still restores)."""

from __future__ import annotations

import json

import pytest

import dqueue.queue as dq
from dqueue.queue.commands import command_from_plain
from dqueue.queue.log_commands import command_from_log
from dqueue.queue.results import result_bytes, traceback_tail

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
