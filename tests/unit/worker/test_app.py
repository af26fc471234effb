"""Handler registry and what one run means."""

from __future__ import annotations

import pytest

from dqueue.client.task import Lease, Task
from dqueue.protocol import wire
from dqueue.queue.fields import MAX_TRACEBACK_CHARS, REASON
from dqueue.worker.app import (
    INVALID_RESULT,
    DeadLetter,
    TaskContext,
    Verdict,
    Worker,
    invalid_result_reason,
    run_handler,
)


def ctx_for(task: Task, lost: bool = False, extended: list | None = None) -> TaskContext:
    sink = extended if extended is not None else []
    return TaskContext(task, "w1", lambda t, s: sink.append((t.id, s)), lambda _id: lost)


TASK = Task(id="t1", type="email", payload={"to": "x"}, attempts=2,
            lease=Lease("w1", "5.0", 0))


def test_decorator_registers_and_returns_the_function():
    worker = Worker()

    @worker.task("email")
    def send(payload, ctx):
        return payload

    assert worker.handlers == {"email": send}
    assert send(1, None) == 1
    with pytest.raises(ValueError, match="already"):
        worker.register("email", send)
    with pytest.raises(ValueError):
        worker.register("", send)


def test_types_for():
    worker = Worker()
    worker.register("b", lambda p, c: None)
    worker.register("a", lambda p, c: None)
    assert worker.types_for(None) == ["a", "b"]
    assert worker.types_for(["b"]) == ["b"]
    with pytest.raises(ValueError, match="zzz"):
        worker.types_for(["zzz"])


def test_return_acks_and_context_tells_the_task():
    worker = Worker()
    seen = []
    worker.register("email", lambda p, c: seen.append((p, c.task_id, c.attempt, c.worker_id)))
    assert run_handler(worker, ctx_for(TASK)).verdict is Verdict.ACK
    assert seen == [({"to": "x"}, "t1", 2, "w1")]


def test_exception_nacks_with_its_text():
    worker = Worker()

    def boom(payload, ctx):
        raise ConnectionError("db down")

    worker.register("email", boom)
    done = run_handler(worker, ctx_for(TASK))
    assert done.verdict is Verdict.NACK and done.reason == "ConnectionError: db down"


def test_dead_letter_exception():
    worker = Worker()

    def reject(payload, ctx):
        raise DeadLetter("bad address")

    worker.register("email", reject)
    done = run_handler(worker, ctx_for(TASK))
    assert done.verdict is Verdict.DEAD_LETTER and "bad address" in done.reason


def test_missing_handler_nacks():
    done = run_handler(Worker(), ctx_for(TASK))
    assert done.verdict is Verdict.NACK and "email" in done.reason


def test_lost_lease_drops_the_result():
    worker = Worker()
    worker.register("email", lambda p, c: None)
    assert run_handler(worker, ctx_for(TASK, lost=True)).verdict is Verdict.DROP


def test_long_reason_is_truncated():
    worker = Worker()

    def boom(payload, ctx):
        raise ValueError("x" * 10_000)

    worker.register("email", boom)
    assert len(run_handler(worker, ctx_for(TASK)).reason) == 4096


def test_ctx_extend_asks_the_runtime():
    calls: list = []
    ctx = ctx_for(TASK, extended=calls)
    ctx.extend(60)
    assert calls == [("t1", 60)]


def test_the_return_value_is_the_result_of_the_ack():
    worker = Worker()
    worker.register("email", lambda p, c: {"sent": True, "to": p["to"]})
    done = run_handler(worker, ctx_for(TASK))
    assert done.verdict is Verdict.ACK and done.result == {"sent": True, "to": "x"}
    assert done.reason == "" and done.traceback is None


def test_a_failure_carries_the_last_lines_of_its_traceback():
    worker = Worker()

    def deep(n):
        if n == 0:
            raise KeyError("missing-key")
        return deep(n - 1)

    worker.register("email", lambda p, c: deep(200))  # a traceback far over the bound
    done = run_handler(worker, ctx_for(TASK))
    assert done.verdict is Verdict.NACK and done.reason == "KeyError: 'missing-key'"
    assert done.traceback is not None and len(done.traceback) <= MAX_TRACEBACK_CHARS
    assert done.traceback.endswith("KeyError: 'missing-key'")  # the end is what is kept
    assert "in deep" in done.traceback and done.result is None


def test_a_dead_letter_carries_its_traceback_too():
    worker = Worker()

    def reject(payload, ctx):
        raise DeadLetter("bad address")

    worker.register("email", reject)
    done = run_handler(worker, ctx_for(TASK))
    assert done.verdict is Verdict.DEAD_LETTER
    assert done.traceback is not None and "DeadLetter: bad address" in done.traceback


@pytest.mark.parametrize(("value", "why"), [
    (b"raw bytes", "result"), ({1, 2}, "result"), (float("nan"), "result"),
    ("x" * 2_000, "max_result_bytes 1024"),
])
def test_a_return_value_that_cannot_be_a_result_fails_the_run(value, why):
    worker = Worker()
    worker.register("email", lambda p, c: value)
    done = run_handler(worker, ctx_for(TASK), max_result_bytes=1_024)
    assert done.verdict is Verdict.NACK and done.result is None
    assert done.reason.startswith(f"{INVALID_RESULT}: ") and why in done.reason
    assert len(done.reason) <= 4_096


def test_a_result_at_the_limit_is_kept():
    worker = Worker()
    worker.register("email", lambda p, c: "x" * 1_022)  # 1,024 bytes as JSON
    done = run_handler(worker, ctx_for(TASK), max_result_bytes=1_024)
    assert done.verdict is Verdict.ACK and done.result == "x" * 1_022


def test_invalid_result_reason_is_bounded_as_a_reason():
    assert len(invalid_result_reason("y" * 10_000)) == 4_096


def test_a_lone_surrogate_in_a_failure_is_escaped_so_the_nack_can_be_sent():
    worker = Worker()

    def bad_name(payload, ctx):
        raise FileNotFoundError(b"report-\xff.csv".decode("utf-8", "surrogateescape"))

    worker.register("email", bad_name)
    done = run_handler(worker, ctx_for(TASK))
    assert done.reason == "FileNotFoundError: report-\\udcff.csv"
    assert done.traceback is not None and "report-\\udcff.csv" in done.traceback
    for text in (done.reason, done.traceback):
        wire.encode(b"nack", {"reason": text})  # msgpack takes it
        assert REASON.accepts(text)
