"""The one duration grammar of the configuration, dqueue-cli and dqueue-worker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dqueue.durations import MAX_DURATION_MS, UNIT_MS, parse_duration_ms


@pytest.mark.parametrize(("text", "ms"), [
    ("30s", 30_000), ("500ms", 500), ("1.5s", 1_500), ("2m", 120_000), ("5m", 300_000),
    ("1h", 3_600_000), ("1h30m", 5_400_000), ("24h", 86_400_000), ("1m30s500ms", 90_500),
    ("0", 0), ("0s", 0), ("0.4ms", 0), ("0.6ms", 1),
])
def test_durations(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", [
    "", "30", "1.5", "s", "-1s", "+1s", "1d", "1s 2s", " 30s", "30s ", "30 s", "1e3s", "1.s",
    ".5s", "1,5s", "30S", "0x10s", "\u0661s",
])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ms(text)


def test_a_bare_number_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="a unit is required"):
        parse_duration_ms("30")


@pytest.mark.parametrize("value", [None, 30, 1.5, b"30s", ["30s"]])
def test_a_value_that_is_not_text_is_refused(value):
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ms(value)


def test_durations_beyond_the_bound_are_refused():
    assert parse_duration_ms(f"{MAX_DURATION_MS}ms") == MAX_DURATION_MS
    with pytest.raises(ValueError, match="at most"):
        parse_duration_ms(f"{MAX_DURATION_MS + 1}ms")
    with pytest.raises(ValueError):
        parse_duration_ms("9" * 400 + "h")


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(UNIT_MS))),
                min_size=1, max_size=4))
def test_parts_add_up(parts):
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration_ms(text) == sum(n * UNIT_MS[unit] for n, unit in parts)


@given(st.text(max_size=12))
def test_any_text_gives_milliseconds_or_value_error(text):
    try:
        ms = parse_duration_ms(text)
    except ValueError:
        return
    assert type(ms) is int and 0 <= ms <= MAX_DURATION_MS
