"""The plain outcome of a command applied to the queue state machine (docs/internals.md
section 2): ``{"ok": True, "value": ...}`` or ``{"ok": False, "code": ..., "message": ...}``."""

from __future__ import annotations

from typing import Any

Outcome = dict[str, Any]


def ok(value: dict[str, Any]) -> Outcome:
    """A success carrying ``value``."""
    return {"ok": True, "value": value}


def fail(code: str, message: str) -> Outcome:
    """A failure with its stable ``code`` and a message naming the field at fault."""
    return {"ok": False, "code": code, "message": message}
