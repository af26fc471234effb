"""A nack's own ``retry_delay_ms`` replaces the queue's backoff (issue 17, ctx.retry)."""

from __future__ import annotations

from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue.backoff import backoff_ms

CONFIG = dq.QueueConfig(lease_ms=10_000, max_retries=2, backoff_base_ms=1_000, backoff_factor=2.0,
                        backoff_cap_ms=5_000, backoff_jitter=0.0)


def _apply(state: dq.QueueState, command: Any) -> dict[str, Any]:
    return state.apply(command, state.last_index + 1)


def _leased(state: dq.QueueState, now_ms: int) -> dict[str, Any]:
    outcome = _apply(state, dq.Lease(worker_id="w1", now_ms=now_ms))
    assert outcome["ok"], outcome
    return outcome["value"]["tasks"][0]


def _nack(state: dq.QueueState, now_ms: int, **kw: Any) -> dict[str, Any]:
    outcome = _apply(state, dq.Nack(id="a", worker_id="w1", now_ms=now_ms, **kw))
    assert outcome["ok"], outcome
    return outcome["value"]["task"]


def _state() -> dq.QueueState:
    state = dq.QueueState(CONFIG)
    state.apply(dq.Enqueue(tasks=(dq.NewTask(id="a", type="email"),), now_ms=0), 1)
    return state


@pytest.mark.parametrize("delay_ms", [0, 1, 7_500, 60_000])
def test_retry_delay_replaces_the_backoff_even_past_its_cap(delay_ms: int) -> None:
    state = _state()
    _leased(state, 100)
    got = _nack(state, 200, retry_delay_ms=delay_ms)
    assert got["status"] == "pending" and got["visible_at_ms"] == 200 + delay_ms


def test_without_retry_delay_the_backoff_holds() -> None:
    state = _state()
    _leased(state, 100)
    assert _nack(state, 200)["visible_at_ms"] == 200 + backoff_ms(CONFIG, "a", 1)


def test_a_delayed_retry_is_not_leased_before_its_delay() -> None:
    state = _state()
    _leased(state, 100)
    _nack(state, 200, retry_delay_ms=3_000)
    early = _apply(state, dq.Lease(worker_id="w1", now_ms=3_199))
    assert early["value"]["tasks"] == []
    assert _leased(state, 3_200)["attempts"] == 2


def test_a_delayed_retry_counts_an_attempt_and_respects_max_retries() -> None:
    state = _state()
    now_ms = 0
    for attempt in (1, 2):
        now_ms += 10_000
        assert _leased(state, now_ms)["attempts"] == attempt
        assert _nack(state, now_ms, retry_delay_ms=1)["status"] == "pending"
    now_ms += 10_000
    _leased(state, now_ms)
    # max_retries=2: the third failed attempt dead-letters whatever delay it asked for.
    assert _nack(state, now_ms, retry_delay_ms=1)["status"] == "dead"


def test_plain_form_round_trips_and_omits_an_absent_delay() -> None:
    with_delay = dq.Nack(id="a", worker_id="w1", retry_delay_ms=1_000, now_ms=5)
    assert dq.command_from_plain(with_delay.to_plain()) == with_delay
    without = dq.Nack(id="a", worker_id="w1", now_ms=5)
    assert "retry_delay_ms" not in without.to_plain()
    assert dq.command_from_plain(without.to_plain()) == without


@pytest.mark.parametrize("bad", [-1, True, 1.5, "10", 7 * 24 * 3_600_000 + 1])
def test_bad_retry_delay_is_refused_naming_the_field(bad: Any) -> None:
    plain = {"op": "nack", "id": "a", "worker_id": "w1", "retry_delay_ms": bad, "now_ms": 1}
    with pytest.raises(dq.InvalidCommand) as caught:
        dq.command_from_plain(plain)
    assert caught.value.field == "retry_delay_ms"
