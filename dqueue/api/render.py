"""Rendering of queue values for HTTP: ``*_ms`` times become RFC 3339 strings.

A task in plain form (docs/internals.md section 2) has ``created_at_ms`` etc.; the API shows
``created_at`` as ``2026-11-27T19:48:00.123Z``. Every other member is passed through.
"""

from __future__ import annotations

import functools
from typing import Any

from dqueue.logs import rfc3339_ms

# Tasks of one command share their times: rendering each distinct millisecond once saves most
# of the cost of a batch.
_render_ms = functools.lru_cache(maxsize=4096)(rfc3339_ms)


def render_times(plain: dict[str, Any]) -> dict[str, Any]:
    """Copy ``plain`` with every ``<name>_ms`` time renamed ``<name>`` and rendered."""
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if key[-6:] == "_at_ms":
            out[key[:-3]] = _render_ms(value) if type(value) is int else None
        else:
            out[key] = value
    return out


def render_task(task: dict[str, Any]) -> dict[str, Any]:
    """A task as the API returns it (docs/http-api.md)."""
    out = render_times(task)
    lease = out.get("lease")
    if isinstance(lease, dict):
        out["lease"] = render_times(lease)
    return out
