"""Per-task options of ``@worker.task(...)``, ``ctx.retry`` and the producer side (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.client.task import Lease, Task
from dqueue.worker.app import DeadLetter, TaskContext, Verdict, Worker, run_handler
from dqueue.worker.options import Backoff, Retry, TaskOptions


def _run(worker: Worker, attempts: int = 1, type: str = "email") -> Any:
    task = Task(id="t1", type=type, payload={}, attempts=attempts, lease=Lease("w1", "5.0", 0))
    return run_handler(worker, TaskContext(task, "w1", lambda t, s: None, lambda _id: False))


def _raising(exc: BaseException, **options: Any) -> Worker:
    worker = Worker()

    @worker.task("email", **options)
    def handler(payload: Any, ctx: TaskContext) -> None:
        raise exc

    return worker


@pytest.mark.parametrize(("options", "field"), [
    ({"max_retries": -1}, "max_retries"), ({"max_retries": 1_001}, "max_retries"),
    ({"max_retries": True}, "max_retries"), ({"max_retries": "3"}, "max_retries"),
    ({"retry_for": ValueError()}, "retry_for"), ({"retry_for": (int,)}, "retry_for"),
    ({"dead_letter_for": "ValueError"}, "dead_letter_for"), ({"backoff": 5}, "backoff"),
])
def test_a_bad_option_is_refused_at_decoration_naming_it(options: dict[str, Any],
                                                          field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Worker().task("email", **options)


@pytest.mark.parametrize(("kw", "name"), [
    ({"base_s": -1}, "base_s"), ({"factor": 0.5}, "factor"), ({"jitter": 1.0}, "jitter"),
    ({"cap_s": float("inf")}, "cap_s"), ({"cap_s": 8 * 86_400}, "cap_s"),
])
def test_a_bad_backoff_is_refused(kw: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Backoff(**kw)


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base_s=1, factor=2, cap_s=5)
    assert [backoff(a) for a in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]
    jittered = Backoff(base_s=10, factor=1, cap_s=100, jitter=0.5)
    assert all(5 <= jittered(a) < 15 for a in range(1, 50))


def test_retry_for_retries_those_and_dead_letters_the_rest() -> None:
    assert _run(_raising(TimeoutError("slow"), retry_for=(TimeoutError,))).verdict \
        is Verdict.NACK
    assert _run(_raising(KeyError("k"), retry_for=TimeoutError)).verdict is Verdict.DEAD_LETTER


def test_dead_letter_for_wins_over_retry_for() -> None:
    worker = _raising(ValueError("bad"), retry_for=(Exception,), dead_letter_for=(ValueError,))
    got = _run(worker)
    assert got.verdict is Verdict.DEAD_LETTER and got.reason == "ValueError: bad"


def test_without_options_failures_retry_and_dead_letter_still_dead_letters() -> None:
    assert _run(_raising(KeyError("k"))).verdict is Verdict.NACK
    assert _run(_raising(KeyError("k"))).retry_delay is None
    assert _run(_raising(DeadLetter("x"), retry_for=(DeadLetter,))).verdict \
        is Verdict.DEAD_LETTER


def test_the_type_backoff_sets_the_retry_delay_of_the_attempt() -> None:
    worker = _raising(OSError("down"), backoff=Backoff(base_s=2, factor=3, cap_s=100))
    assert [_run(worker, attempts=a).retry_delay for a in (1, 2, 3)] == [2, 6, 18]
    assert _run(_raising(OSError(), backoff=lambda attempt: 0.25 * attempt),
                attempts=4).retry_delay == 1.0


def test_a_backoff_callable_returning_nonsense_falls_back_to_the_queue() -> None:
    assert _run(_raising(OSError(), backoff=lambda attempt: -1)).retry_delay is None


def test_ctx_retry_nacks_with_its_countdown_even_outside_retry_for() -> None:
    worker = Worker()

    @worker.task("email", retry_for=(TimeoutError,), backoff=Backoff(base_s=9))
    def handler(payload: Any, ctx: TaskContext) -> None:
        raise ctx.retry(countdown=1.5)

    got = _run(worker)
    assert got.verdict is Verdict.NACK and got.retry_delay == 1.5
    assert got.reason.startswith("Retry")


def test_ctx_retry_without_countdown_uses_the_type_backoff() -> None:
    worker = _raising(Retry(), backoff=Backoff(base_s=4))
    assert _run(worker).retry_delay == 4


@pytest.mark.parametrize("countdown", [-1, True, "1", 8 * 86_400])
def test_ctx_retry_refuses_a_bad_countdown(countdown: Any) -> None:
    ctx = TaskContext(Task(id="t", type="x"), "w1", lambda t, s: None, lambda _id: False)
    with pytest.raises(ValueError, match="countdown"):
        ctx.retry(countdown=countdown)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def enqueue(self, type: str, payload: Any = None, **kw: Any) -> str:
        self.calls.append((type, payload, kw))
        return "task"


def test_enqueue_uses_the_decorator_max_retries_unless_overridden() -> None:
    worker = Worker()

    @worker.task("email", max_retries=5)
    def send_email(payload: Any, ctx: TaskContext) -> str:
        return "sent"

    client = _Recorder()
    send_email.enqueue(client, {"to": "a"})
    send_email.enqueue(client, {"to": "b"}, max_retries=1, priority=3)
    assert client.calls == [("email", {"to": "a"}, {"max_retries": 5}),
                            ("email", {"to": "b"}, {"max_retries": 1, "priority": 3})]
    assert send_email({}, None) == "sent" and worker.handlers["email"] is send_email


def test_options_are_frozen() -> None:
    options = TaskOptions(max_retries=1)
    with pytest.raises(AttributeError):
        options.max_retries = 2  # type: ignore[misc]
