"""LocalQueue: the real queue state machine behind the SDK client's interface."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from dqueue.client import (
    Client,
    IdempotencyKeyReused,
    InvalidRequest,
    LeaseConflict,
    TaskNotFound,
    TaskStatus,
    WaitTimeout,
)
from dqueue.protocol.ipc_client import BadRequest
from dqueue.queue import QueueConfig
from dqueue.testing import LocalQueue, ManualClock
from dqueue.worker import DeadLetter, Worker
from dqueue.worker.app import Verdict

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def queue(clock: ManualClock) -> LocalQueue:
    return LocalQueue(clock=clock)


def test_the_client_methods_exist_here_with_their_names() -> None:
    # The point of LocalQueue: code written against Client runs against it unchanged.
    wanted = {"enqueue", "enqueue_many", "get", "cancel", "lease", "lease_many", "ack", "nack",
              "extend", "list_tasks", "dead_letters", "redrive", "purge", "stats", "health",
              "wait"}
    assert wanted <= set(dir(Client))
    assert wanted <= set(dir(LocalQueue))


def test_higher_priority_first_then_enqueue_order(queue: LocalQueue) -> None:
    low = queue.enqueue("t", 1)
    high = queue.enqueue("t", 2, priority=5)
    later = queue.enqueue("t", 3)
    assert [queue.lease().id for _ in range(3)] == [high.id, low.id, later.id]
    assert queue.lease() is None


def test_an_idempotency_key_gives_back_the_first_task(queue: LocalQueue) -> None:
    first = queue.enqueue("t", {"n": 1}, idempotency_key="k")
    again = queue.enqueue("t", {"n": 1}, idempotency_key="k")
    assert again.id == first.id and again.duplicate and not first.duplicate
    with pytest.raises(IdempotencyKeyReused):
        queue.enqueue("t", {"n": 2}, idempotency_key="k")  # the key, with another body


def test_a_delayed_task_shows_when_the_clock_passes_it(queue: LocalQueue,
                                                       clock: ManualClock) -> None:
    queue.enqueue("t", delay=10)
    assert queue.lease() is None
    clock.advance(10)
    assert queue.lease() is not None


def test_an_expired_lease_is_delivered_again_and_its_token_refused(
        queue: LocalQueue, clock: ManualClock) -> None:
    queue.enqueue("t")
    first = queue.lease("w1", lease_seconds=5)
    assert first is not None and first.lease is not None and first.attempts == 1
    clock.advance(5)                      # the lease runs out: a failed attempt, retried after
    assert queue.lease("w2") is None      # the first backoff (1 s, +/- 20 %)
    clock.advance(2)
    second = queue.lease("w2")
    assert second is not None and second.id == first.id and second.attempts == 2
    assert second.lease_token != first.lease_token
    with pytest.raises(LeaseConflict):
        queue.ack(first)
    assert queue.ack(second).status is TaskStatus.COMPLETED


def test_extend_keeps_a_task_past_its_first_expiry(queue: LocalQueue,
                                                   clock: ManualClock) -> None:
    queue.enqueue("t")
    task = queue.lease(lease_seconds=5)
    clock.advance(4)
    extended = queue.extend(task, 30)
    assert extended.lease is not None and extended.lease.expires_at_ms == clock() + 30_000
    clock.advance(10)
    assert queue.lease() is None


def test_nacks_retry_then_dead_letter_redrive_and_purge(queue: LocalQueue,
                                                        clock: ManualClock) -> None:
    task = queue.enqueue("t", max_retries=1)  # one retry after the first attempt
    retried = queue.nack(queue.lease(), "first failure")
    assert retried.status is TaskStatus.PENDING and queue.lease() is None  # in its backoff
    clock.advance((retried.visible_at_ms - clock()) / 1000)
    second = queue.lease()
    assert second is not None and second.attempts == 2
    queue.nack(second, "second failure")
    assert queue.get(task.id).status is TaskStatus.DEAD
    assert [t.last_error for t in queue.dead_letters()] == ["second failure"]
    assert queue.redrive(task.id) == 1
    again = queue.lease()
    assert again is not None and again.id == task.id and again.attempts == 1
    queue.nack(again, "gave up", dead_letter=True)
    assert queue.purge() == 1
    with pytest.raises(TaskNotFound):
        queue.get(task.id)


def test_cancel_and_its_refusals(queue: LocalQueue) -> None:
    task = queue.enqueue("t")
    assert queue.cancel(task.id).status is TaskStatus.CANCELLED
    with pytest.raises(TaskNotFound):
        queue.cancel("no-such-task")


def test_a_bad_field_is_refused_naming_it(queue: LocalQueue) -> None:
    with pytest.raises(InvalidRequest) as caught:
        queue.enqueue("t", max_retries=-1)
    assert caught.value.field == "tasks[0].max_retries"
    with pytest.raises(BadRequest):
        queue.command({"op": "enqueue", "tasks": []})
    with pytest.raises(BadRequest):
        queue.read({"op": "nothing"})


def test_stats_and_listing_pages(queue: LocalQueue) -> None:
    ids = [t.id for t in queue.enqueue_many([{"type": "a"}, {"type": "b"}, {"type": "a"}])]
    stats = queue.stats()
    assert stats["tasks"]["pending"] == 3
    assert stats["by_type"]["a"]["pending"] == 2
    page = queue.list_tasks("pending", limit=2)
    rest = queue.list_tasks("pending", limit=2, cursor=page.next_cursor)
    assert [t.id for t in page.tasks + rest.tasks] == ids and rest.next_cursor is None
    assert [t.id for t in queue.list_tasks("pending", type="b").tasks] == [ids[1]]


def test_a_long_poll_is_answered_by_an_enqueue_from_another_thread() -> None:
    queue = LocalQueue()  # the wall clock: a long poll waits in real time
    got: list[object] = []
    poller = threading.Thread(target=lambda: got.append(queue.lease(wait_seconds=10)))
    poller.start()
    task = queue.enqueue("t")
    poller.join(10)
    assert not poller.is_alive()
    leased = got[0]
    assert leased is not None and leased.id == task.id  # type: ignore[attr-defined]


def test_run_worker_gives_each_handler_its_verdict(queue: LocalQueue,
                                                   clock: ManualClock) -> None:
    app = Worker()
    seen: list[int] = []

    @app.task("ok")
    def ok(payload: int, ctx: object) -> None:
        seen.append(payload)

    @app.task("flaky")
    def flaky(payload: None, ctx: object) -> None:
        raise RuntimeError("try again")

    @app.task("poison")
    def poison(payload: None, ctx: object) -> None:
        raise DeadLetter("never")

    queue.enqueue("ok", 1)
    flaky_task = queue.enqueue("flaky", max_retries=2)
    queue.enqueue("poison")
    verdicts = [c.verdict for c in queue.run_worker(app)]
    assert verdicts == [Verdict.ACK, Verdict.NACK, Verdict.DEAD_LETTER]
    assert seen == [1]
    # The nacked task waits for its backoff; past it, it runs again (attempt 2).
    assert queue.run_worker(app) == []
    clock.advance(3600)
    again = queue.run_worker(app)
    assert [(c.task.id, c.task.attempts) for c in again] == [(flaky_task.id, 2)]


def test_a_handler_sees_its_lease_lost_when_another_worker_took_the_task(
        queue: LocalQueue, clock: ManualClock) -> None:
    app = Worker()
    lost: list[bool] = []

    @app.task("slow")
    def slow(payload: None, ctx: object) -> None:
        clock.advance(60)                  # the lease runs out while the handler works
        assert queue.lease("thief") is not None
        lost.append(ctx.lease_lost)        # type: ignore[attr-defined]

    queue.enqueue("slow")
    (completion,) = queue.run_worker(app, max_tasks=1)
    assert lost == [True] and completion.verdict is Verdict.DROP


def test_queue_settings_are_the_given_config() -> None:
    queue = LocalQueue(QueueConfig(max_retries=0), clock=ManualClock())
    queue.enqueue("t")
    queue.nack(queue.lease(), "once")
    assert len(queue.dead_letters()) == 1


def test_the_sdk_doc_example_passes() -> None:
    # docs/sdk.md shows a test file using LocalQueue: run its tests as written.
    text = (DOCS / "sdk.md").read_text()
    blocks = re.findall(r"```python\n(# test_tasks\.py\n.*?)```", text, re.S)
    assert len(blocks) == 1
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "docs/sdk.md", "exec"), namespace)
    tests = [name for name in namespace if name.startswith("test_")]
    assert tests
    for name in tests:
        namespace[name]()  # type: ignore[operator]


def test_run_worker_keeps_results_and_tracebacks(queue: LocalQueue) -> None:
    app = Worker()

    @app.task("double")
    def double(payload: int, ctx: object) -> dict[str, int]:
        return {"doubled": payload * 2}

    @app.task("broken")
    def broken(payload: None, ctx: object) -> None:
        raise KeyError("k")

    done = queue.enqueue("double", 4)
    failed = queue.enqueue("broken", max_retries=0)
    queue.run_worker(app)
    assert queue.wait(done.id, timeout=0).result == {"doubled": 8}
    dead = queue.wait(failed.id, timeout=0)
    assert dead.status is TaskStatus.DEAD and dead.last_error == "KeyError: 'k'"
    assert dead.last_traceback is not None and dead.last_traceback.endswith("KeyError: 'k'")


def test_wait_is_ended_by_an_ack_from_another_thread(queue: LocalQueue) -> None:
    task = queue.enqueue("t")
    leased = queue.lease("w1")
    assert leased is not None
    with pytest.raises(WaitTimeout) as info:
        queue.wait(task.id, timeout=0.01)
    assert info.value.task is not None and info.value.task.status is TaskStatus.LEASED
    acker = threading.Thread(target=lambda: queue.ack(leased, "w1", result=[1]))
    started = time.monotonic()
    threading.Timer(0.05, acker.start).start()
    assert queue.wait(task.id, timeout=20).result == [1]
    assert time.monotonic() - started < 10  # ended by the ack, not by the timeout
    with pytest.raises(TaskNotFound):
        queue.wait("missing", timeout=0)
