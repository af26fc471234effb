"""Cron expressions: fields, names, ranges, steps, lists, day rules and DST in time zones."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dqueue.queue import cron

UTC = ZoneInfo("UTC")


def ms(text: str, zone: str = "UTC") -> int:
    """Unix ms of a wall time ``YYYY-MM-DD HH:MM`` in ``zone`` (first occurrence)."""
    local = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone))
    return int(local.timestamp()) * 1000


def wall(instant_ms: int, zone: str = "UTC") -> str:
    return datetime.fromtimestamp(instant_ms // 1000, ZoneInfo(zone)).strftime(
        "%Y-%m-%d %H:%M %Z")


def run(expression: str, start: str, count: int, zone: str = "UTC") -> list[str]:
    parsed = cron.parse(expression, zone)
    at = ms(start, zone)
    out = []
    for _ in range(count):
        found = parsed.next_after(at)
        assert found is not None
        out.append(wall(found, zone))
        at = found
    return out


def brute(parsed: cron.Cron, after_ms: int, until_ms: int) -> list[int]:
    """Every matching minute instant in (after_ms, until_ms], by checking each UTC minute."""
    tz = ZoneInfo(parsed.zone)
    found = []
    at = (after_ms // 60_000 + 1) * 60_000
    while at <= until_ms:
        local = datetime.fromtimestamp(at // 1000, tz)
        if (local.minute in parsed.minutes and local.hour in parsed.hours
                and local.month in parsed.months and parsed._day_matches(local)
                and local.fold == 0):
            found.append(at)
        at += 60_000
    return found


def test_every_minute_and_fixed_times() -> None:
    assert run("* * * * *", "2026-01-01 00:00", 2) == ["2026-01-01 00:01 UTC",
                                                        "2026-01-01 00:02 UTC"]
    assert run("30 9 * * *", "2026-01-01 10:00", 2) == ["2026-01-02 09:30 UTC",
                                                         "2026-01-03 09:30 UTC"]


def test_ranges_steps_and_lists() -> None:
    assert run("*/15 * * * *", "2026-01-01 00:00", 4) == [
        "2026-01-01 00:15 UTC", "2026-01-01 00:30 UTC", "2026-01-01 00:45 UTC",
        "2026-01-01 01:00 UTC"]
    assert run("0 8-10/2 * * *", "2026-01-01 00:00", 3) == [
        "2026-01-01 08:00 UTC", "2026-01-01 10:00 UTC", "2026-01-02 08:00 UTC"]
    assert run("5,10 0 * * *", "2026-01-01 00:06", 2) == ["2026-01-01 00:10 UTC",
                                                           "2026-01-02 00:05 UTC"]
    assert run("50/5 0 * * *", "2026-01-01 00:00", 3) == [
        "2026-01-01 00:50 UTC", "2026-01-01 00:55 UTC", "2026-01-02 00:50 UTC"]


def test_names_and_sunday_as_seven() -> None:
    # 2026-01-05 is a Monday.
    assert run("0 0 * * mon-fri", "2026-01-09 12:00", 1) == ["2026-01-12 00:00 UTC"]
    assert run("0 0 * * 7", "2026-01-05 00:00", 1) == run("0 0 * * SUN", "2026-01-05 00:00", 1)
    assert run("0 0 1 jan,Jul *", "2026-02-01 00:00", 2) == ["2026-07-01 00:00 UTC",
                                                              "2027-01-01 00:00 UTC"]


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    # The 13th, or any Friday: 2026-02-06 is a Friday, 2026-02-13 a Friday and the 13th.
    assert run("0 0 13 * fri", "2026-02-01 00:00", 3) == [
        "2026-02-06 00:00 UTC", "2026-02-13 00:00 UTC", "2026-02-20 00:00 UTC"]
    # With a star in one day field only the other restricts.
    assert run("0 0 * * fri", "2026-02-01 00:00", 1) == ["2026-02-06 00:00 UTC"]


def test_leap_day() -> None:
    assert run("0 0 29 2 *", "2026-01-01 00:00", 1) == ["2028-02-29 00:00 UTC"]


@pytest.mark.parametrize(("expression", "message"), [
    ("* * * *", "5 fields"), ("60 * * * *", "minute"), ("* 24 * * *", "hour"),
    ("* * 0 * *", "day_of_month"), ("* * * 13 *", "month"), ("* * * * 8", "day_of_week"),
    ("*/0 * * * *", "step"), ("5-1 * * * *", "backwards"), ("x * * * *", "minute"),
    ("* * * foo *", "month"), ("0 0 31 2 *", "no month"), ("", "5 fields"),
    ("\u00b2 * * * *", "minute"), ("*/\u00b2 * * * *", "step"), ("1-\u0661 * * * *", "minute"),
    ("-1 * * * *", "minute"), ("1,,2 * * * *", "minute"), (5, "string"),
])
def test_bad_expressions_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(cron.CronError, match=message):
        cron.parse(expression)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(cron.CronError, match="timezone"):
        cron.parse("* * * * *", "Mars/Olympus")
    with pytest.raises(cron.CronError, match="timezone"):
        cron.check_zone(5)


def test_spring_forward_gap_runs_just_after_it() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT in New York: 02:30 does not exist that day.
    zone = "America/New_York"
    assert run("30 2 * * *", "2026-03-07 12:00", 2, zone) == [
        "2026-03-08 03:30 EDT", "2026-03-09 02:30 EDT"]
    # Every quarter hour: each instant once, none lost, none repeated.
    assert run("*/15 * * * *", "2026-03-08 01:30", 6, zone) == [
        "2026-03-08 01:45 EST", "2026-03-08 03:00 EDT", "2026-03-08 03:15 EDT",
        "2026-03-08 03:30 EDT", "2026-03-08 03:45 EDT", "2026-03-08 04:00 EDT"]


def test_fall_back_repeated_hour_runs_once() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice and runs at the first.
    zone = "America/New_York"
    assert run("30 1 * * *", "2026-10-31 12:00", 2, zone) == [
        "2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"]
    # From inside the second 01:xx hour, the next quarter is after it, not in the past.
    second_pass_ms = ms("2026-11-01 01:00", zone) + 3_600_000 + 10 * 60_000  # 01:10 EST
    parsed = cron.parse("*/15 * * * *", zone)
    assert wall(parsed.next_after(second_pass_ms), zone) == "2026-11-01 02:00 EST"


@pytest.mark.parametrize("expression", ["*/7 * * * *", "0 */5 * * 1-5", "10 2 * * *",
                                        "0 0 1,15 * sun"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Australia/Lord_Howe"])
def test_next_after_agrees_with_brute_force(expression: str, zone: str) -> None:
    parsed = cron.parse(expression, zone)
    # Around the March and October changes in both hemispheres.
    for start in ("2026-03-28 20:00", "2026-10-03 20:00", "2026-04-04 20:00"):
        after = ms(start, "UTC")
        until = after + 40 * 3_600_000
        expected = brute(parsed, after, until)
        # Gap times: the brute force sees only real wall times; ours adds the shifted ones,
        # which coincide with real instants (deduplicated) or lie after the gap.
        got = []
        at = after
        while True:
            found = parsed.next_after(at)
            assert found is not None and found > at
            if found > until:
                break
            got.append(found)
            at = found
        assert set(expected) <= set(got)
        assert len(got) == len(set(got))


def test_latest_at_or_before() -> None:
    parsed = cron.parse("0 9 * * mon", "UTC")
    at = ms("2026-01-21 12:00")  # a Wednesday
    assert wall(parsed.latest_at_or_before(at, 0)) == "2026-01-19 09:00 UTC"
    assert parsed.latest_at_or_before(at, ms("2026-01-19 09:00")) is None
    assert parsed.latest_at_or_before(ms("2026-01-19 09:00"), 0) == ms("2026-01-19 09:00")
    minutely = cron.parse("* * * * *")
    assert minutely.latest_at_or_before(ms("2026-01-01 00:00") + 59_999, 0) == ms(
        "2026-01-01 00:00")


def test_latest_matches_brute_force_over_a_week() -> None:
    parsed = cron.parse("*/20 3-4 * * tue", "Europe/Paris")
    start = ms("2026-03-01 00:00")
    instants = brute(parsed, start, start + 10 * 86_400_000)
    for probe in range(start, start + 10 * 86_400_000, 7 * 3_600_000 + 13 * 60_000):
        earlier = [at for at in instants if at <= probe]
        assert parsed.latest_at_or_before(probe, start) == (earlier[-1] if earlier else None)
