"""Structured logging for every dqueue process: JSON lines (default) or human-readable text.

Each record carries the node id, the process (``supervisor``, ``raft``, ``api``), the level, an
``event`` name and its fields. Code logs an event with ``log_event(logger, logging.INFO,
"leader_changed", term=7, leader_id="n2")``; the formatter renders it. Configured once by each
process's entry point with ``configure_logging``; nothing else touches the handlers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# The LogRecord attribute that carries an event's fields.
FIELDS_ATTR = "dq_fields"


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log one structured event.

    Args:
        logger: the module's logger.
        level: a ``logging`` level.
        event: a short snake_case event name, e.g. ``lease_expired``.
        **fields: plain values describing the event (JSON-serializable).
    """
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={FIELDS_ATTR: fields}, stacklevel=2)


def rfc3339_ms(ms: int) -> str:
    """Milliseconds since the Unix epoch as RFC 3339 UTC, e.g. ``2026-11-27T19:48:00.123Z``."""
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def format_time(created: float) -> str:
    """A ``time.time()`` value as RFC 3339 UTC with milliseconds."""
    return rfc3339_ms(round(created * 1000))


class _Formatter(logging.Formatter):
    """Shared part of both formats: the ordered fields of a record."""

    def __init__(self, node_id: str, process: str) -> None:
        super().__init__()
        self.node_id = node_id
        self.process = process

    def fields_of(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": format_time(record.created),
            "level": record.levelname.lower(),
            "node_id": self.node_id,
            "process": self.process,
            "logger": record.name,
            "event": record.getMessage(),
        }
        out.update(getattr(record, FIELDS_ATTR, None) or {})
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return out


class JsonFormatter(_Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields_of(record), default=str, separators=(",", ":"))


class TextFormatter(_Formatter):
    """``ts level node/process event key=value ...`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields_of(record)
        head = (
            f"{fields.pop('ts')} {fields.pop('level'):<7} "
            f"{fields.pop('node_id')}/{fields.pop('process')} {fields.pop('event')}"
        )
        fields.pop("logger")
        # Every value JSON-quoted, a traceback's newlines too: one record is one line.
        tail = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        return f"{head} {tail}".rstrip()


def configure_logging(
    node_id: str, process: str, level: str = "info", log_format: str = "json",
    stream: TextIO | None = None,
) -> None:
    """Route every logger of this process to one handler in the chosen format.

    Args:
        node_id: this node's member id.
        process: ``supervisor``, ``raft`` or ``api``.
        level: ``debug``, ``info``, ``warning`` or ``error``.
        log_format: ``json`` or ``text``.
        stream: where to write (standard error when omitted).
    """
    formatter_class = JsonFormatter if log_format == "json" else TextFormatter
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_class(node_id, process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # waitress logs every queue-depth warning; keep it but under our format.
    logging.captureWarnings(True)
