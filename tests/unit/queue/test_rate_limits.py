"""Rate limits in the state machine (issue 17): the GCRA arithmetic on cluster time, leases that
skip a spent type, long-poll readiness and deadlines, and snapshots (restore == replay)."""

from __future__ import annotations

from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.rate_limits import BURST_MS, Bucket, check_rate_limit


class Driver:
    """A ``QueueState`` fed plain commands at chosen cluster times."""

    def __init__(self) -> None:
        self.state = dq.QueueState()
        self.index = 0
        self.next_id = 0

    def apply(self, now_ms: int, **plain: Any) -> dict[str, Any]:
        self.index += 1
        outcome = self.state.apply(dq.command_from_plain({**plain, "now_ms": now_ms}),
                                   self.index)
        assert outcome is not None
        return outcome

    def enqueue(self, now_ms: int, task_type: str, count: int, queue: str = "default") -> None:
        tasks = []
        for _ in range(count):
            self.next_id += 1
            tasks.append({"id": f"t{self.next_id}", "type": task_type, "queue": queue})
        assert self.apply(now_ms, op="enqueue", tasks=tasks)["ok"]

    def lease(self, now_ms: int, max_tasks: int = 100, **extra: Any) -> list[str]:
        outcome = self.apply(now_ms, op="lease", worker_id="w", max_tasks=max_tasks, **extra)
        assert outcome["ok"], outcome
        return [task["type"] for task in outcome["value"]["tasks"]]


def test_grammar_and_bounds() -> None:
    limit = check_rate_limit("100/m", "rate_limit")
    assert (limit.count, limit.period_ms, limit.text) == (100, 60_000, "100/m")
    assert check_rate_limit("1000000/h", "x").period_ms == 3_600_000
    for bad in ("0/s", "100", "100/d", "1/ s", "01/s", "1000001/s", 5, None, "10/min"):
        with pytest.raises(InvalidCommand) as caught:
            check_rate_limit(bad, "settings.rate_limit")
        assert caught.value.field == "settings.rate_limit"


def test_bucket_arithmetic_is_exact_on_integer_time() -> None:
    # 3/s: one lease per 333.3 ms; tolerance is one interval (longer than BURST_MS).
    bucket = Bucket(check_rate_limit("3/s", "r"))
    granted = []
    for at_ms in range(0, 3_001):
        while bucket.allows(at_ms):
            bucket.take(at_ms)
            granted.append(at_ms)
    # A burst of two at 0, then one each time a whole interval has passed, to the ms.
    assert granted[:2] == [0, 0]
    assert granted[2:6] == [334, 667, 1_000, 1_334]
    # Over the long run the rate is the limit: 3 per second plus the burst.
    assert len(granted) == 2 + 9
    assert bucket.ready_at_ms() == 3_334 and not bucket.allows(3_333)


def test_a_fast_limit_has_a_burst_of_burst_ms() -> None:
    bucket = Bucket(check_rate_limit("100/s", "r"))
    taken = 0
    while bucket.allows(0):
        bucket.take(0)
        taken += 1
    assert taken == 1 + BURST_MS * 100 // 1_000


def test_type_limit_caps_every_lease_whoever_asks() -> None:
    driver = Driver()
    assert driver.apply(0, op="put_rate_limit", type="email", rate_limit="10/s")["value"] == {
        "created": True, "type": "email", "rate_limit": "10/s"}
    driver.enqueue(0, "email", 200)
    leased = 0
    for now_ms in range(0, 10_000, 7):  # many workers asking all the time
        leased += len(driver.lease(now_ms, max_tasks=5))
    # 10 per second over 10 s, plus the burst of one interval: never more.
    assert leased == 100 + 1


def test_a_lease_skips_a_spent_type_for_others() -> None:
    driver = Driver()
    driver.apply(0, op="put_rate_limit", type="a", rate_limit="1/m")
    driver.enqueue(0, "a", 5)
    driver.enqueue(0, "b", 3)
    assert driver.lease(1_000) == ["a", "a", "b", "b", "b"]
    assert driver.lease(2_000) == []
    # Filtered leases see the same budget.
    driver.enqueue(3_000, "b", 1)
    assert driver.lease(3_000, types=["a"]) == []
    assert driver.lease(3_000, types=["a", "b"]) == ["b"]
    # One interval after the burst's start, the next one: the first at 60 s.
    assert driver.lease(60_999, types=["a"]) == []
    assert driver.lease(61_000, types=["a"]) == ["a"]


def test_queue_limit_is_a_setting_and_holds_over_types() -> None:
    driver = Driver()
    created = driver.apply(0, op="create_queue", name="mail",
                           settings={"rate_limit": "2/s"})
    assert created["value"]["queue"]["settings"]["rate_limit"] == "2/s"
    driver.enqueue(0, "a", 4, "mail")
    driver.enqueue(0, "b", 4, "mail")
    driver.enqueue(0, "c", 2)
    assert driver.lease(0, queues=["mail", "default"]) == ["a", "a", "c", "c"]
    assert driver.lease(400, queues=["mail"]) == []
    assert driver.lease(500, queues=["mail"]) == ["a"]
    changed = driver.apply(600, op="update_queue", name="mail", changes={"rate_limit": None})
    assert changed["value"]["queue"]["settings"]["rate_limit"] is None
    assert driver.lease(600, queues=["mail"]) == ["a", "b", "b", "b", "b"]


def test_bad_limits_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidCommand) as caught:
        dq.command_from_plain({"op": "put_rate_limit", "type": "a", "rate_limit": "fast"})
    assert caught.value.field == "rate_limit"
    with pytest.raises(InvalidCommand) as caught:
        dq.command_from_plain({"op": "create_queue", "name": "q",
                               "settings": {"rate_limit": "0/s"}})
    assert caught.value.field == "settings.rate_limit"
    driver = Driver()
    missing = driver.apply(0, op="delete_rate_limit", type="a")
    assert not missing["ok"] and missing["code"] == "not_found"


def test_a_changed_limit_starts_a_fresh_bucket_and_a_deleted_one_frees() -> None:
    driver = Driver()
    driver.apply(0, op="put_rate_limit", type="a", rate_limit="1/h")
    driver.enqueue(0, "a", 10)
    assert len(driver.lease(0)) == 2
    assert driver.lease(1) == []
    same = driver.apply(2, op="put_rate_limit", type="a", rate_limit="1/h")
    assert same["value"]["created"] is False
    assert driver.lease(3) == []  # an equal limit keeps its bucket
    driver.apply(4, op="put_rate_limit", type="a", rate_limit="2/h")
    assert len(driver.lease(5)) == 2
    assert driver.apply(6, op="delete_rate_limit", type="a")["ok"]
    assert len(driver.lease(7)) == 6


def test_has_visible_and_next_deadline_follow_the_budget() -> None:
    driver = Driver()
    state = driver.state
    driver.apply(0, op="put_rate_limit", type="a", rate_limit="1/s")
    driver.enqueue(0, "a", 5)
    assert state.next_deadline_ms() is None
    assert len(driver.lease(0)) == 2
    # Spent until 1 s: a parked long poll must not wake before, and must wake then.
    assert not state.has_visible(None, 999)
    assert not state.has_visible(["a"], 999)
    assert state.has_visible(None, 1_000) and state.has_visible(["a"], 1_000)
    assert state.next_deadline_ms() == 1_000
    # Another type's task is visible at once, whatever the filter.
    driver.enqueue(10, "b", 1)
    assert state.has_visible(None, 10) and not state.has_visible(["a"], 10)
    assert driver.lease(1_000) == ["a", "b"]
    assert state.next_deadline_ms() == 2_000


def test_has_visible_counts_a_delayed_task_of_a_type_in_budget() -> None:
    driver = Driver()
    state = driver.state
    driver.apply(0, op="put_rate_limit", type="a", rate_limit="1/m")
    driver.enqueue(0, "a", 3)
    driver.lease(0)
    assert driver.apply(0, op="enqueue", tasks=[{"id": "d", "type": "b", "delay_ms": 500}])["ok"]
    assert not state.has_visible(None, 499)
    assert state.has_visible(None, 500)
    assert not state.has_visible(["a"], 500)


def _history(driver: Driver) -> None:
    driver.apply(0, op="create_queue", name="q", settings={"rate_limit": "3/s"})
    driver.apply(0, op="put_rate_limit", type="a", rate_limit="5/s")
    driver.apply(0, op="put_rate_limit", type="z", rate_limit="1/m")
    driver.enqueue(0, "a", 20)
    driver.enqueue(0, "b", 20, "q")
    for now_ms in range(0, 1_500, 90):
        driver.lease(now_ms, max_tasks=3, queues=["default", "q"])


def test_snapshot_round_trip_and_restore_equals_replay() -> None:
    replayed = Driver()
    _history(replayed)
    data = replayed.state.snapshot()
    assert b'"rate_limits":' in data
    restored = dq.QueueState()
    restored.restore(data)
    assert restored.snapshot() == data
    assert restored.rate_limits.list_plain() == [
        {"type": "a", "rate_limit": "5/s"}, {"type": "z", "rate_limit": "1/m"}]
    # The same commands from here give the same outcomes and the same bytes.
    other = Driver()
    other.state, other.index, other.next_id = restored, replayed.index, replayed.next_id
    for now_ms in range(1_500, 4_000, 130):
        assert other.lease(now_ms, queues=["default", "q"]) == replayed.lease(
            now_ms, queues=["default", "q"])
        assert other.state.next_deadline_ms() == replayed.state.next_deadline_ms()
        assert other.state.has_visible(None, now_ms + 50, ["q"]) == \
            replayed.state.has_visible(None, now_ms + 50, ["q"])
    assert other.state.snapshot() == replayed.state.snapshot()


def test_a_state_without_limits_writes_no_rate_limits() -> None:
    driver = Driver()
    driver.enqueue(0, "a", 2)
    driver.lease(0)
    assert b"rate_limits" not in driver.state.snapshot()


def test_bad_snapshot_rate_limits_are_refused() -> None:
    driver = Driver()
    driver.apply(0, op="put_rate_limit", type="a", rate_limit="5/s")
    good = driver.state.snapshot()
    for bad in (b'"rate_limits":{"types":[["a","5/x"]],"buckets":[]}',
                b'"rate_limits":{"types":[],"buckets":[["kind","a","5/s",1]]}',
                b'"rate_limits":{"types":[],"buckets":[["type","a","5/s",-1]]}',
                b'"rate_limits":[]'):
        start = good.index(b'"rate_limits":')
        data = good[:start] + bad + b"}"
        with pytest.raises(ValueError):
            dq.QueueState().restore(data)


def test_has_visible_sees_the_next_head_of_a_fifo_group_while_a_type_is_spent() -> None:
    driver = Driver()
    state = driver.state
    driver.apply(0, op="put_rate_limit", type="c", rate_limit="1/h")
    driver.enqueue(0, "c", 3)
    driver.lease(0)  # c is spent: a lease of any type now leaves c out
    driver.apply(0, op="create_queue", name="o.fifo", settings={"max_retries": 0})
    assert driver.apply(0, op="enqueue", tasks=[
        {"id": "first", "type": "a", "queue": "o.fifo", "group": "g"},
        {"id": "second", "type": "b", "queue": "o.fifo", "group": "g"}])["ok"]
    assert driver.lease(0, queues=["o.fifo"], lease_ms=1_000) == ["a"]
    # The lease of "first" expires at 1 s with its retries spent: "second" heads the group.
    assert not state.has_visible(None, 999, ["o.fifo"])
    assert state.has_visible(None, 1_000, ["o.fifo"])
    assert state.has_visible(["b"], 1_000, ["o.fifo"])
    assert not state.has_visible(["c"], 1_000, ["o.fifo"])
    assert driver.lease(1_000, queues=["o.fifo"]) == ["b"]
