"""Histogram buckets are cumulative and bounds inclusive, as Prometheus expects."""

from __future__ import annotations

import pytest

from dqueue.node.histogram import Histogram


def test_cumulative_buckets_with_inclusive_bounds():
    h = Histogram([1, 5, 10])
    for value in (0.5, 1, 3, 10, 11, 100):
        h.observe(value)
    assert h.to_plain() == {"buckets": [[1, 2], [5, 3], [10, 4], ["+Inf", 6]],
                            "sum": 125.5, "count": 6}


def test_bounds_must_increase():
    with pytest.raises(ValueError):
        Histogram([5, 1])
    with pytest.raises(ValueError):
        Histogram([1, 1])
