"""How many examples a property test draws: the full count in CI, a fifth in the quick lane.

Every property states its full count as ``max_examples=examples(N)``. ``examples`` scales N by
the loaded Hypothesis profile (``tests/conftest.py``): ``full`` (N itself) when the whole suite
runs, as CI does, and ``quick`` (N / 5, at least 1) for ``-m "not slow"``, so that the day-to-day
lane stays short while CI searches as deep as before. ``--hypothesis-profile full`` makes a quick
run search fully.
"""

from __future__ import annotations

from hypothesis import settings

#: The profile's max_examples that means "the stated count itself".
FULL_EXAMPLES = 100
QUICK_EXAMPLES = 20

settings.register_profile("full", max_examples=FULL_EXAMPLES)
settings.register_profile("quick", max_examples=QUICK_EXAMPLES)


def examples(full_count: int) -> int:
    """The examples a property draws under the loaded profile, given its count in CI."""
    return max(1, full_count * settings.default.max_examples // FULL_EXAMPLES)
