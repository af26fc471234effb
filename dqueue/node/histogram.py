"""A fixed-bucket histogram for the Raft process's metrics, in the plain form the API exports."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any


class Histogram:
    """Counts observations into cumulative buckets (Prometheus style).

    Args:
        bounds: the upper bounds of the buckets, increasing; ``+Inf`` is implied.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError("bucket bounds must be strictly increasing")
        self.bounds = list(bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Add one observation."""
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def to_plain(self) -> dict[str, Any]:
        """``{"buckets": [[bound, cumulative count], ..., ["+Inf", n]], "sum", "count"}``."""
        buckets = []
        running = 0
        for bound, n in zip([*self.bounds, "+Inf"], self._counts, strict=True):
            running += n
            buckets.append([bound, running])
        return {"buckets": buckets, "sum": self.sum, "count": self.count}
