"""Test lanes (README, "Tests"): ``slow`` marks every test that starts clusters or processes
for long, or runs the simulator over many seeds; ``./bin/test -m "not slow"`` is the quick lane.

Every integration test starts real node processes, so ``integration`` implies ``slow`` here,
in one place, rather than in each module (a new integration module is in the right lane
without anyone remembering to say so).
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add ``slow`` to every test marked ``integration``."""
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(pytest.mark.slow)
