"""Enqueue admission: the depth bound (queue_full) and an idempotency key reused with another
body (idempotency_key_reused), on the real state machine."""

from __future__ import annotations

import dataclasses

import dqueue.queue as dq
from dqueue.queue.admission import same_value
from tests.unit.queue.test_state import CONFIG, Driver, task


def full_driver(max_depth: int) -> Driver:
    return Driver(dataclasses.replace(CONFIG, max_depth=max_depth))


def test_enqueue_beyond_max_depth_is_refused_and_a_batch_that_does_not_fit_whole():
    d = full_driver(3)
    d.enqueue(0, task("a"), task("b"))
    outcome = d.run(dq.Enqueue(tasks=(task("c"), task("d")), now_ms=1))
    assert outcome["code"] == "queue_full" and outcome["max_depth"] == 3
    assert d.state.get_task("c") is None  # refused whole
    d.enqueue(2, task("c"))  # one more fits
    assert d.run(dq.Enqueue(tasks=(task("e"),), now_ms=3))["code"] == "queue_full"


def test_leased_tasks_count_finished_ones_do_not():
    d = full_driver(1)
    d.enqueue(0, task("a"))
    [leased] = d.lease(1)
    assert d.run(dq.Enqueue(tasks=(task("b"),), now_ms=2))["code"] == "queue_full"
    d.ok(dq.Ack(id="a", worker_id="w1", token=leased["lease"]["token"], now_ms=3))
    d.enqueue(4, task("b"))


def test_a_duplicate_is_answered_even_when_the_queue_is_full():
    d = full_driver(1)
    first = d.enqueue(0, task("a", idempotency_key="k"))["tasks"][0]
    assert d.enqueue(1, task("b", idempotency_key="k")) == {"tasks": [first],
                                                            "duplicates": [True]}
    both = dq.Enqueue(tasks=(task("b", idempotency_key="k"), task("c", idempotency_key="k")),
                      now_ms=2)
    assert d.run(both)["ok"]


def test_no_max_depth_means_no_bound():
    d = full_driver(0)
    d.enqueue(0, *[task(f"t{i}") for i in range(50)])


def test_key_reused_with_another_body_names_the_original_task():
    d = Driver()
    d.enqueue(0, task("a", idempotency_key="k", payload={"n": 1}))
    for other in (task("b", idempotency_key="k", payload={"n": 2}),
                  task("b", idempotency_key="k", payload={"n": 1.0}),  # 1 and 1.0 differ
                  task("b", idempotency_key="k", payload={"n": True}),
                  task("b", idempotency_key="k", payload={"n": 1}, type="sms"),
                  task("b", idempotency_key="k", payload={"n": 1}, priority=5),
                  task("b", idempotency_key="k", payload={"n": 1}, max_retries=9)):
        outcome = d.run(dq.Enqueue(tasks=(other,), now_ms=1))
        assert outcome["code"] == "idempotency_key_reused", other
        assert outcome["task_id"] == "a" and outcome["field"] == "idempotency_key"
    assert d.state.get_task("b") is None


def test_the_same_body_is_a_duplicate_delay_and_a_default_max_retries_included():
    d = Driver()
    d.enqueue(0, task("a", idempotency_key="k", payload=[1, {"x": "y"}], delay_ms=5_000))
    same = d.enqueue(1, task("b", idempotency_key="k", payload=[1, {"x": "y"}],
                              max_retries=CONFIG.max_retries, delay_ms=4_000))
    assert same["duplicates"] == [True] and same["tasks"][0]["id"] == "a"


def test_key_reused_in_a_batch_refuses_it_whole_naming_the_item():
    d = Driver()
    d.enqueue(0, task("a", idempotency_key="k"))
    outcome = d.run(dq.Enqueue(tasks=(task("n"), task("b", idempotency_key="k", priority=1)),
                               now_ms=1))
    assert outcome["code"] == "idempotency_key_reused"
    assert outcome["field"] == "tasks[1].idempotency_key" and outcome["task_id"] == "a"
    inner = d.run(dq.Enqueue(tasks=(task("c", idempotency_key="j"),
                                    task("d", idempotency_key="j", payload=1)), now_ms=2))
    assert inner["code"] == "idempotency_key_reused" and "tasks[0]" in inner["message"]
    assert d.state.get_task("n") is None and d.state.get_task("c") is None


def test_same_value_is_strict_about_types_and_does_not_recurse():
    assert same_value({"a": [1, "x", None]}, {"a": [1, "x", None]})
    assert not same_value(1, 1.0) and not same_value(True, 1) and not same_value([1], [1, 2])
    deep_a: list = []
    deep_b: list = []
    for _ in range(5_000):
        deep_a, deep_b = [deep_a], [deep_b]
    assert same_value(deep_a, deep_b)


def test_max_depth_survives_settings_round_trip():
    from dqueue.queue.config import settings_from_plain, settings_to_plain
    settings = dataclasses.replace(CONFIG, max_depth=7)
    assert settings_from_plain(settings_to_plain(settings)).max_depth == 7
    assert settings_from_plain({}).max_depth == 0  # settings of older snapshots
