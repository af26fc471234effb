"""Rendering of queue values for HTTP: ``*_ms`` times become RFC 3339 strings.

A task in plain form (docs/internals.md section 2) has ``created_at_ms`` etc.; the API shows
``created_at`` as ``2026-11-27T19:48:00.123Z``. Every other member is passed through.
"""

from __future__ import annotations

from typing import Any

from dqueue.logs import rfc3339_ms


def render_times(plain: dict[str, Any]) -> dict[str, Any]:
    """Copy ``plain`` with every ``<name>_ms`` time renamed ``<name>`` and rendered."""
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if key.endswith("_at_ms"):
            out[key[:-3]] = rfc3339_ms(value) if isinstance(value, int) else None
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
