"""Durations as people type them, one grammar for the node's configuration and ``dqueue-cli``.

A duration is one or more parts ``<number><unit>`` with nothing between them, as in Go's
``time.ParseDuration``: ``500ms``, ``30s``, ``1.5s``, ``5m``, ``24h``, ``1h30m``. The units are
``ms``, ``s``, ``m`` and ``h``. A bare number is refused (was it seconds or milliseconds?), but
for ``0``, which is zero in any unit. Each user of a duration checks its own range.
"""

from __future__ import annotations

import re
from decimal import Decimal

_PART = re.compile(r"([0-9]{1,16}(?:\.[0-9]{1,16})?)(ms|s|m|h)")
UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}
# The longest duration accepted, about 285 millennia: every millisecond count up to it is exact
# in a float as in a msgpack integer.
MAX_DURATION_MS = 1 << 53


def parse_duration_ms(text: str) -> int:
    """The milliseconds of a duration such as ``30s`` or ``1h30m`` (rounded, halves to even).

    Raises:
        ValueError: ``text`` is not a duration (the message says what one looks like).
    """
    if text == "0":
        return 0
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a duration such as '30s' or '500ms', got {text!r}")
    pos = 0
    total_ms = Decimal(0)  # exact: a bound checked on a float would round first
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total_ms += Decimal(match.group(1)) * UNIT_MS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        hint = " (a unit is required)" if text.replace(".", "", 1).isdigit() else ""
        raise ValueError(f"expected a duration such as '30s' or '500ms', got {text!r}{hint}")
    if total_ms > MAX_DURATION_MS:
        raise ValueError(f"a duration of at most {MAX_DURATION_MS} ms, got {text!r}")
    return round(total_ms)
