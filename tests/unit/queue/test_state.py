"""Lifecycle rules of QueueState, each with explicit now_ms (issue 3, DESIGN section 3)."""

from __future__ import annotations

from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue.backoff import backoff_ms

CONFIG = dq.QueueConfig(lease_ms=10_000, max_retries=3, backoff_base_ms=1_000, backoff_factor=2.0,
                     backoff_cap_ms=5_000, backoff_jitter=0.0, dedup_window_ms=60_000,
                     retention_ms=100_000)


class Driver:
    """Applies commands at increasing indexes and returns outcome values."""

    def __init__(self, config: dq.QueueConfig = CONFIG) -> None:
        self.state = dq.QueueState(config)
        self.index = 0

    def run(self, command: Any) -> dict[str, Any]:
        self.index += 1
        return self.state.apply(command, self.index)

    def ok(self, command: Any) -> dict[str, Any]:
        outcome = self.run(command)
        assert outcome["ok"], outcome
        return outcome["value"]

    def enqueue(self, now_ms: int, *tasks: dq.NewTask) -> dict[str, Any]:
        return self.ok(dq.Enqueue(tasks=tasks, now_ms=now_ms))

    def lease(self, now_ms: int, worker: str = "w1", **kw: Any) -> list[dict[str, Any]]:
        return self.ok(dq.Lease(worker_id=worker, now_ms=now_ms, **kw))["tasks"]


def task(task_id: str, **kw: Any) -> dq.NewTask:
    return dq.NewTask(id=task_id, type=kw.pop("type", "email"), **kw)


def test_priority_first_then_log_order_on_ties() -> None:
    d = Driver()
    d.enqueue(0, task("low"), task("hi1", priority=5), task("mid", priority=1))
    d.enqueue(1, task("hi2", priority=5))
    got = [t["id"] for t in d.lease(2, max_tasks=10)]
    assert got == ["hi1", "hi2", "mid", "low"]


def test_lease_records_holder_attempt_token_and_expiry() -> None:
    d = Driver()
    d.enqueue(1_000, task("a"), task("b"))
    leased = d.lease(2_000, worker="w9", max_tasks=2, lease_ms=7_000)
    assert [t["lease"] for t in leased] == [
        {"worker_id": "w9", "token": f"{d.index}.0", "expires_at_ms": 9_000},
        {"worker_id": "w9", "token": f"{d.index}.1", "expires_at_ms": 9_000}]
    assert [t["attempts"] for t in leased] == [1, 1]
    assert d.state.next_deadline_ms() == 9_000
    assert d.lease(2_001) == []


def test_type_filter_only_returns_wanted_types() -> None:
    d = Driver()
    d.enqueue(0, task("e1", type="email", priority=9), task("s1", type="sms"),
              task("p1", type="push", priority=3))
    assert [t["id"] for t in d.lease(1, types=("sms", "push"), max_tasks=5)] == ["p1", "s1"]
    assert d.lease(1, types=("sms",)) == []
    assert d.state.has_visible(["email"], 1) and not d.state.has_visible(["sms"], 1)


def test_delay_hides_task_until_visible_at() -> None:
    d = Driver()
    d.enqueue(1_000, task("late", delay_ms=500))
    assert d.state.next_deadline_ms() == 1_500
    assert not d.state.has_visible(None, 1_499)
    assert d.state.has_visible(None, 1_500)
    assert d.lease(1_499) == []
    assert [t["id"] for t in d.lease(1_500)] == ["late"]


def test_ack_completes_and_repeat_by_holder_is_idempotent() -> None:
    d = Driver()
    d.enqueue(0, task("a"))
    token = d.lease(1)[0]["lease"]["token"]
    done = d.ok(dq.Ack(id="a", worker_id="w1", token=token, now_ms=2))["task"]
    assert done["status"] == "completed" and done["lease"] is None
    assert d.ok(dq.Ack(id="a", worker_id="w1", token=token, now_ms=3))["task"] == done
    assert d.ok(dq.Ack(id="a", worker_id="w1", now_ms=3))["task"] == done
    assert d.run(dq.Ack(id="a", worker_id="w2", now_ms=4))["code"] == "lease_conflict"
    assert d.run(dq.Ack(id="nope", worker_id="w1", now_ms=4))["code"] == "not_found"


def test_ack_batch_answers_each_item_as_a_lone_ack_would() -> None:
    d, lone = Driver(), Driver()
    for driver in (d, lone):
        driver.enqueue(0, task("a"), task("b"), task("c"), task("d"))
        driver.lease(1, worker="w1", max_tasks=2)
        driver.lease(1, worker="w2", max_tasks=2)
    tokens = {t["id"]: t["lease"]["token"] for t in d.state.list_tasks("leased")["tasks"]}
    items = (dq.Ack(id="a", worker_id="w1", token=tokens["a"], now_ms=5),
             dq.Ack(id="b", worker_id="w1", token="1.0", now_ms=5),  # stale token
             dq.Ack(id="c", worker_id="w1", token=tokens["c"], now_ms=5),  # w2 holds it
             dq.Ack(id="zz", worker_id="w1", now_ms=5),
             dq.Ack(id="d", worker_id="w2", now_ms=5),
             dq.Ack(id="a", worker_id="w1", token=tokens["a"], now_ms=5))  # repeat in the batch
    results = d.ok(dq.AckBatch(items=items, now_ms=5))["results"]
    assert results == [lone.run(item) for item in items]
    assert [d.state.get_task(i) for i in "abcd"] == [lone.state.get_task(i) for i in "abcd"]
    assert d.state.stats() == lone.state.stats()
    assert [r["ok"] for r in results] == [True, False, False, False, True, True]
    assert [r.get("code") for r in results] == [
        None, "lease_conflict", "lease_conflict", "not_found", None, None]
    assert results[0]["value"]["task"]["status"] == "completed"
    assert results[5] == results[0]
    assert d.state.get_task("b")["status"] == "leased"
    assert d.state.get_task("c")["status"] == "leased"
    assert d.state.event_counts()["acked"] == {"email": 2}


def test_nack_backs_off_exponentially_then_dead_letters_with_last_error() -> None:
    d = Driver()
    d.enqueue(0, task("a"))
    now_ms, visible = 0, []
    # max_retries=3 means three retries after the first attempt: four attempts in all.
    for attempt in (1, 2, 3):
        now_ms += 10_000
        assert [t["attempts"] for t in d.lease(now_ms)] == [attempt]
        nacked = d.ok(dq.Nack(id="a", worker_id="w1", reason=f"err{attempt}", now_ms=now_ms))
        assert nacked["task"]["status"] == "pending"
        visible.append(nacked["task"]["visible_at_ms"] - now_ms)
    assert visible == [1_000, 2_000, 4_000]  # base * factor ** (attempt - 1), no jitter here
    now_ms += 10_000
    d.lease(now_ms)
    dead = d.ok(dq.Nack(id="a", worker_id="w1", reason="err4", now_ms=now_ms))["task"]
    assert dead["status"] == "dead" and dead["last_error"] == "err4" and dead["attempts"] == 4


def test_backoff_is_capped() -> None:
    config = dq.QueueConfig(max_retries=10, backoff_base_ms=1_000, backoff_cap_ms=5_000,
                         backoff_jitter=0.0)
    d = Driver(config)
    d.enqueue(0, task("a"))
    delays = []
    for i in range(5):
        now_ms = 100_000 * (i + 1)
        d.lease(now_ms)
        got = d.ok(dq.Nack(id="a", worker_id="w1", now_ms=now_ms))["task"]
        delays.append(got["visible_at_ms"] - now_ms)
    assert delays == [1_000, 2_000, 4_000, 5_000, 5_000]


def test_nack_dead_letter_flag_skips_retries() -> None:
    d = Driver()
    d.enqueue(0, task("a"))
    d.lease(1)
    got = d.ok(dq.Nack(id="a", worker_id="w1", reason="poison", dead_letter=True, now_ms=2))
    assert got["task"]["status"] == "dead" and got["task"]["attempts"] == 1


def test_expiry_while_worker_holds_task_is_a_failed_attempt_and_fences_the_holder() -> None:
    d = Driver()
    d.enqueue(0, task("a"))
    old = d.lease(1_000, worker="w1")[0]["lease"]
    assert old["expires_at_ms"] == 11_000
    # At expires_at the lease is gone; the task waits out the backoff from the expiry time.
    d.ok(dq.Tick(now_ms=11_000))
    expired = d.state.get_task("a")
    assert expired["status"] == "pending" and expired["last_error"] == "lease expired"
    assert expired["visible_at_ms"] == 11_000 + backoff_ms(CONFIG, "a", 1) == 12_000
    assert d.run(dq.Ack(id="a", worker_id="w1", token=old["token"], now_ms=11_500))["code"] \
        == "lease_conflict"
    new = d.lease(12_000, worker="w2")[0]
    assert new["attempts"] == 2 and new["lease"]["token"] != old["token"]
    for stale in (dq.Ack(id="a", worker_id="w1", token=old["token"], now_ms=12_001),
                  dq.Nack(id="a", worker_id="w1", now_ms=12_001),
                  dq.Extend(id="a", worker_id="w1", token=old["token"], now_ms=12_001)):
        assert d.run(stale)["code"] == "lease_conflict"
    # Same worker id, stale token: fenced too.
    d2 = Driver()
    d2.enqueue(0, task("b"))
    first = d2.lease(0)[0]["lease"]["token"]
    d2.ok(dq.Tick(now_ms=20_000))
    d2.lease(20_000)
    assert d2.run(dq.Ack(id="b", worker_id="w1", token=first, now_ms=20_001))["code"] \
        == "lease_conflict"


def test_expiry_is_evaluated_without_any_command_for_that_task() -> None:
    d = Driver(dq.QueueConfig(lease_ms=100, max_retries=0, backoff_jitter=0.0))  # no retry
    d.enqueue(0, task("a"), task("b"))
    d.lease(0, max_tasks=2)
    d.enqueue(99, task("c"))
    assert d.state.get_task("a")["status"] == "leased"
    d.enqueue(100, task("d"))  # any command at or after expires_at expires both leases
    assert [d.state.get_task(i)["status"] for i in "ab"] == ["dead", "dead"]


def test_extend_moves_expiry_from_now() -> None:
    d = Driver()
    d.enqueue(0, task("a"))
    token = d.lease(0)[0]["lease"]["token"]
    got = d.ok(dq.Extend(id="a", worker_id="w1", token=token, lease_ms=20_000, now_ms=9_000))
    assert got["task"]["lease"]["expires_at_ms"] == 29_000
    d.ok(dq.Tick(now_ms=10_000))  # the first expiry time passes: still leased
    assert d.state.get_task("a")["status"] == "leased"
    assert d.state.next_deadline_ms() == 29_000
    d.ok(dq.Tick(now_ms=29_000))
    assert d.state.get_task("a")["status"] == "pending"


def test_idempotency_window_edges_and_key_reuse() -> None:
    d = Driver()
    first = d.enqueue(1_000, task("a", idempotency_key="k"))["tasks"][0]
    dup = d.enqueue(60_999, task("b", idempotency_key="k"))
    assert dup == {"tasks": [first], "duplicates": [True]}
    assert d.state.get_task("b") is None
    reused = d.enqueue(61_000, task("c", idempotency_key="k"))  # window is [1_000, 61_000)
    assert reused["duplicates"] == [False] and reused["tasks"][0]["id"] == "c"
    assert d.enqueue(61_001, task("d", idempotency_key="k"))["tasks"][0]["id"] == "c"


def test_duplicate_key_inside_one_batch() -> None:
    d = Driver()
    got = d.enqueue(0, task("a", idempotency_key="k"), task("b", idempotency_key="k"))
    assert [t["id"] for t in got["tasks"]] == ["a", "a"]
    assert got["duplicates"] == [False, True]


def test_existing_id_rejects_whole_batch() -> None:
    d = Driver()
    d.enqueue(0, task("a"))
    outcome = d.run(dq.Enqueue(tasks=(task("new"), task("a")), now_ms=1))
    assert outcome["code"] == "invalid" and "tasks[1].id" in outcome["message"]
    assert d.state.get_task("new") is None


def test_cancel_only_pending() -> None:
    d = Driver()
    d.enqueue(0, task("a"), task("b", delay_ms=50))
    assert d.ok(dq.Cancel(id="b", now_ms=1))["task"]["status"] == "cancelled"
    d.lease(1)
    assert d.run(dq.Cancel(id="a", now_ms=2))["code"] == "invalid_state"
    assert d.state.next_deadline_ms() == 10_001  # the cancelled delay no longer counts


def test_redrive_one_by_type_and_all_then_purge() -> None:
    d = Driver()
    d.enqueue(0, task("e1"), task("e2"), task("s1", type="sms"), task("s2", type="sms"))
    for task_id in ("e1", "e2", "s1", "s2"):
        d.lease(1, types=(d.state.get_task(task_id)["type"],))
        d.ok(dq.Nack(id=task_id, worker_id="w1", dead_letter=True, now_ms=1))
    assert d.run(dq.Redrive(id="zz", now_ms=2))["code"] == "not_found"
    assert d.ok(dq.Redrive(id="e1", now_ms=2)) == {"count": 1}
    assert d.run(dq.Redrive(id="e1", now_ms=2))["code"] == "invalid_state"
    back = d.state.get_task("e1")
    assert back["status"] == "pending" and back["attempts"] == 0 and back["visible_at_ms"] == 2
    assert d.ok(dq.Redrive(type="sms", now_ms=3)) == {"count": 2}
    listed = d.state.list_tasks("dead")
    assert [t["id"] for t in listed["tasks"]] == ["e2"] and listed["next_cursor"] is None
    assert d.ok(dq.Purge(now_ms=4)) == {"count": 1}
    assert d.state.get_task("e2") is None
    assert d.ok(dq.Redrive(now_ms=5)) == {"count": 0}


def test_retention_prunes_finished_tasks_and_keeps_others() -> None:
    config = dq.QueueConfig(retention_ms=1_000, dedup_window_ms=500, backoff_jitter=0.0)
    d = Driver(config)
    d.enqueue(0, task("done"), task("gone"), task("waiting"))
    d.lease(0, max_tasks=2)
    d.ok(dq.Ack(id="done", worker_id="w1", now_ms=10))
    d.ok(dq.Cancel(id="waiting", now_ms=20))
    d.ok(dq.Tick(now_ms=1_009))
    assert d.state.get_task("done") is not None
    d.ok(dq.Tick(now_ms=1_010))
    assert d.state.get_task("done") is None
    assert d.state.get_task("gone")["status"] == "leased"
    d.ok(dq.Tick(now_ms=1_020))
    assert d.state.get_task("waiting") is None
    assert d.state.stats()["by_status"] == {"pending": 0, "leased": 1, "completed": 0,
                                             "dead": 0, "cancelled": 0}


def test_retention_waits_for_a_live_idempotency_key() -> None:
    d = Driver(dq.QueueConfig(retention_ms=100, dedup_window_ms=10_000))
    d.enqueue(0, task("a", idempotency_key="k"))
    d.ok(dq.Cancel(id="a", now_ms=0))
    d.ok(dq.Tick(now_ms=5_000))
    assert d.enqueue(5_000, task("b", idempotency_key="k"))["duplicates"] == [True]
    d.ok(dq.Tick(now_ms=10_000))
    assert d.state.get_task("a") is None


def test_memory_stays_bounded_under_steady_load() -> None:
    d = Driver(dq.QueueConfig(retention_ms=1_000, dedup_window_ms=1_000))
    for i in range(3_000):
        now_ms = i * 10
        d.enqueue(now_ms, task(f"t{i}", idempotency_key=f"k{i}", type=("a", "b")[i % 2]))
        leased = d.lease(now_ms, types=(("a", "b")[i % 2],))
        d.ok(dq.Ack(id=leased[0]["id"], worker_id="w1", now_ms=now_ms))
    state = d.state
    assert len(state._tasks) <= 101 and len(state._dedup) <= 101
    ready = state._queues["default"].ready
    assert len(state._finished) <= 101 and len(ready.all) <= 200
    assert all(len(h) <= 200 for h in ready.by_type.values())


def test_clock_never_runs_backwards() -> None:
    d = Driver()
    d.enqueue(5_000, task("a"))
    d.ok(dq.Tick(now_ms=1_000))  # a new leader with a slower clock
    assert d.state.clock_ms == 5_000
    assert d.lease(1_000)[0]["lease"]["expires_at_ms"] == 15_000


def test_index_must_increase() -> None:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Tick(now_ms=1), 5)
    with pytest.raises(ValueError):
        state.apply(dq.Tick(now_ms=2), 5)


def test_config_limits_give_invalid_outcomes() -> None:
    d = Driver(dq.QueueConfig(max_batch=1, max_lease_tasks=2, max_lease_ms=50_000))
    assert d.run(dq.Enqueue(tasks=(task("a"), task("b")), now_ms=0))["code"] == "invalid"
    assert d.run(dq.Lease(worker_id="w", max_tasks=3, now_ms=0))["code"] == "invalid"
    assert d.run(dq.Lease(worker_id="w", lease_ms=50_001, now_ms=0))["code"] == "invalid"
    assert d.state.stats()["by_status"]["pending"] == 0


def test_list_tasks_pages_with_cursor_and_rejects_bad_input() -> None:
    d = Driver()
    d.enqueue(0, *(task(f"t{i}", type=("a", "b")[i % 2]) for i in range(5)))
    first = d.state.list_tasks("pending", limit=2)
    second = d.state.list_tasks("pending", limit=2, cursor=first["next_cursor"])
    third = d.state.list_tasks("pending", limit=2, cursor=second["next_cursor"])
    ids = [t["id"] for page in (first, second, third) for t in page["tasks"]]
    assert ids == ["t0", "t1", "t2", "t3", "t4"] and third["next_cursor"] is None
    assert [t["id"] for t in d.state.list_tasks("pending", type="b")["tasks"]] == ["t1", "t3"]
    for kwargs in ({"status": "nope"}, {"status": "dead", "limit": 0},
                   {"status": "dead", "cursor": "x"}):
        with pytest.raises(ValueError):
            d.state.list_tasks(**kwargs)


def test_stats_by_status_and_type() -> None:
    d = Driver()
    d.enqueue(7, task("a"), task("b", type="sms"))
    d.lease(8, types=("sms",))
    stats = d.state.stats()
    assert stats["clock_ms"] == 8
    assert stats["by_type"]["sms"]["leased"] == 1 and stats["by_type"]["email"]["pending"] == 1
