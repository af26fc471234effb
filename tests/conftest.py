"""Test lanes (README, "Tests"): ``slow`` marks every test that starts clusters or processes
for long, or runs the simulator over many seeds; ``./bin/test -m "not slow"`` is the quick lane.

Every integration test starts real node processes, so ``integration`` implies ``slow`` here,
in one place, rather than in each module (a new integration module is in the right lane
without anyone remembering to say so).

Property tests draw fewer examples in the quick lane (``tests/depth.py``): the ``quick``
Hypothesis profile is loaded when the run selects ``not slow`` and names no profile itself.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

import tests.depth  # noqa: F401  (registers the profiles)


def pytest_configure(config: pytest.Config) -> None:
    """Load the ``quick`` profile for ``-m "not slow"`` runs, ``full`` otherwise."""
    if config.getoption("hypothesis_profile", None) is not None:
        return
    quick = (config.getoption("markexpr", "") or "").replace(" ", "") == "notslow"
    settings.load_profile("quick" if quick else "full")
    config.stash[_PROFILE] = "quick" if quick else "full"


_PROFILE = pytest.StashKey[str]()


def pytest_report_header(config: pytest.Config) -> str:
    """Say which depth the property tests run at."""
    profile = config.stash.get(_PROFILE, "as given by --hypothesis-profile")
    return f"property-test depth: {profile} (tests/depth.py)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add ``slow`` to every test marked ``integration``."""
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(pytest.mark.slow)
