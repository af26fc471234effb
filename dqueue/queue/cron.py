"""Five-field cron expressions, evaluated in an IANA time zone: pure, no clock.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or ``jan``-``dec``), day of
week (0-7 or ``sun``-``sat``; 0 and 7 are Sunday). Each field is ``*``, a number or name, a
range ``a-b``, any of these with a step ``/n`` (``a/n`` runs from ``a`` to the field's end), or
a comma-separated list of them. As in Vixie cron, when both day fields are restricted (neither
starts with ``*``) a day matches if either matches.

Wall time to instants (docs/schedules.md): a local time that does not exist (the hour skipped
when clocks go forward) is read with the offset before the change, so it runs just after the
gap; a local time that happens twice (clocks go back) runs once, at its first occurrence.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DAYS = {name: number for number, name in enumerate(
    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
#: (name, low, high, names) of each field, in expression order.
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day_of_month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day_of_week", 0, 7, _DAYS))
_MINUTE_MS = 60_000
_GAP_LOOKBACK = timedelta(hours=3)
#: A search gives up after this many years without a match (``30 0 31 2 *`` never matches).
_SEARCH_YEARS = 8


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression: the set of allowed values of each field.

    Attributes:
        expression: The text it was parsed from.
        minutes, hours, days, months, weekdays: Allowed values (weekdays 0-6, Sunday 0).
        day_or: Both day fields are restricted: a day matches if either does.
        zone: The IANA time zone name the wall times are in.
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_or: bool
    zone: str

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        return (in_month or in_week) if self.day_or else (in_month and in_week)

    def next_after(self, after_ms: int) -> int | None:
        """The first occurrence strictly after ``after_ms`` (Unix ms), or None if there is
        none within ``_SEARCH_YEARS`` years."""
        tz = ZoneInfo(self.zone)
        start = datetime.fromtimestamp(after_ms // 1000, tz).replace(tzinfo=None)
        local = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        # Back by the longest gap: a wall time in a gap maps to an instant after later wall
        # times (02:30 in a skipped hour is 03:30); candidates not after ``after_ms`` are
        # skipped below.
        local -= _GAP_LOOKBACK
        limit = local.replace(year=local.year + _SEARCH_YEARS)
        while local < limit:
            if local.month not in self.months:
                year, month = (local.year + 1, 1) if local.month == 12 else (
                    local.year, local.month + 1)
                local = datetime(year, month, 1)
                continue
            if not self._day_matches(local):
                local = datetime(local.year, local.month, local.day) + timedelta(days=1)
                continue
            if local.hour not in self.hours:
                local = local.replace(minute=0) + timedelta(hours=1)
                continue
            if local.minute not in self.minutes:
                local += timedelta(minutes=1)
                continue
            instant_ms = _to_ms(local, tz)
            if instant_ms > after_ms:
                return instant_ms
            local += timedelta(minutes=1)
        return None

    def latest_at_or_before(self, at_ms: int, after_ms: int) -> int | None:
        """The last occurrence in ``(after_ms, at_ms]``, or None if there is none.

        Found with ``next_after`` from windows that double backwards from ``at_ms``, then a
        walk forward within the first window that holds an occurrence.
        """
        window_ms = _MINUTE_MS
        while True:
            start_ms = max(after_ms, at_ms - window_ms)
            found = self.next_after(start_ms)
            if found is not None and found <= at_ms:
                while True:
                    following = self.next_after(found)
                    if following is None or following > at_ms:
                        return found
                    found = following
            if start_ms == after_ms:
                return None
            window_ms *= 2


def _to_ms(local: datetime, tz: ZoneInfo) -> int:
    """The instant of naive wall time ``local`` in ``tz`` (fold 0: first occurrence; a time in
    a gap takes the offset before the gap)."""
    aware = local.replace(tzinfo=tz, fold=0)
    return int(aware.astimezone(UTC).timestamp()) * 1000


def _is_number(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes ``²``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not _is_number(text):
        raise CronError(f"{name}: {text!r} is not a number" + (
            " or a name" if names else ""))
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{name}: {number} is outside {low}-{high}")
    return number


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not _is_number(step_text) or int(step_text) < 1:
                raise CronError(f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first = _value(first_text, name, low, high, names)
            last = _value(last_text, name, low, high, names)
            if first > last:
                raise CronError(f"{name}: range {base} runs backwards")
        else:
            first = _value(base, name, low, high, names)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return values


def check_zone(zone: object) -> str:
    """Return ``zone`` if it names an IANA time zone known here.

    Raises:
        CronError: otherwise.
    """
    if not isinstance(zone, str) or not zone or len(zone) > 64:
        raise CronError("timezone must be an IANA time zone name, such as Europe/Paris")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"timezone: unknown time zone {zone!r}") from None
    return zone


def parse(expression: object, zone: object = "UTC") -> Cron:
    """Parse a five-field cron expression whose wall times are in ``zone``.

    Raises:
        CronError: naming the bad field.
    """
    if not isinstance(expression, str) or len(expression) > 200:
        raise CronError("cron must be a string of five fields")
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"cron must have 5 fields (minute hour day month weekday), "
                        f"not {len(parts)}")
    checked_zone = check_zone(zone)
    sets = [_field(part, name, low, high, names)
            for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(day % 7 for day in sets[4])
    day_or = not parts[2].startswith("*") and not parts[4].startswith("*")
    cron = Cron(" ".join(parts), frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]),
                frozenset(sets[3]), weekdays, day_or, checked_zone)
    if not any(day <= calendar.monthrange(2024, month)[1]
               for month in cron.months for day in cron.days) and not day_or:
        raise CronError("day_of_month: no month has that day")
    return cron
