"""Backoff delays: exponential, capped, with a jitter fixed by task id and attempt."""

from __future__ import annotations

from dqueue.queue.backoff import backoff_ms, jitter_unit
from dqueue.queue.config import QueueConfig


def test_exponential_without_jitter() -> None:
    config = QueueConfig(backoff_base_ms=500, backoff_factor=3.0, backoff_cap_ms=10_000,
                         backoff_jitter=0.0)
    assert [backoff_ms(config, "t", a) for a in range(1, 6)] == [500, 1_500, 4_500, 10_000,
                                                                   10_000]


def test_huge_attempt_is_capped_not_overflowing() -> None:
    config = QueueConfig(backoff_cap_ms=7_000, backoff_jitter=0.0)
    assert backoff_ms(config, "t", 100_000) == 7_000


def test_jitter_is_deterministic_bounded_and_spread() -> None:
    config = QueueConfig(backoff_base_ms=1_000, backoff_factor=1.0, backoff_cap_ms=10_000,
                         backoff_jitter=0.2)
    delays = [backoff_ms(config, f"task-{i}", 1) for i in range(200)]
    assert delays == [backoff_ms(config, f"task-{i}", 1) for i in range(200)]
    assert all(800 <= d < 1_200 for d in delays)
    assert len(set(delays)) > 100
    assert backoff_ms(config, "x", 1) != backoff_ms(config, "x", 2) or \
        jitter_unit("x", 1) == jitter_unit("x", 2)


def test_jitter_unit_range() -> None:
    units = [jitter_unit(str(i), 1) for i in range(500)]
    assert all(0.0 <= u < 1.0 for u in units)
    assert min(units) < 0.1 and max(units) > 0.9
