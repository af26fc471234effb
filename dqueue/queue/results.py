"""Task results and failure details: their bounds and how they are measured.

An ack may carry the handler's ``result`` (any JSON value), stored on the completed task for
its retention period; a nack may carry ``traceback``, the last lines of the failure's traceback,
stored as the task's ``last_traceback`` beside ``last_error`` ("ExceptionType: message").

The edges (HTTP, the worker gateway) refuse a result whose compact JSON encoding is larger than
their ``max_result_bytes`` (``DEFAULT_MAX_RESULT_BYTES`` unless configured); the state machine
takes what a validated command carries, as it does payloads. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dqueue.queue.fields import MAX_TRACEBACK_CHARS, InvalidCommand, check_payload

#: Largest result (compact JSON, UTF-8 bytes) the edges take by default: 64 KiB (the node
#: setting ``api.max_result_bytes``, ``NodeConfig.max_result_bytes``).
DEFAULT_MAX_RESULT_BYTES = 65_536


def result_bytes(value: Any) -> int:
    """The size of ``value`` as compact JSON in UTF-8, as the edges measure a result.

    Raises:
        ValueError: if ``value`` is not JSON (NaN, a set, a cycle...).
    """
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not a JSON value ({exc.__class__.__name__})") from None
    return len(text.encode("utf-8"))


def traceback_tail(text: str, max_chars: int = MAX_TRACEBACK_CHARS) -> str:
    """The last lines of ``text`` that fit in ``max_chars`` (whole lines where possible)."""
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    newline = tail.find("\n")
    return tail[newline + 1:] if 0 <= newline < len(tail) - 1 else tail


def result_problem(value: Any, max_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> str | None:
    """Why ``value`` cannot be kept as a task's result, or None when it can.

    The one check of a result, at every edge (HTTP ack, the worker gateway) and in the worker
    before it sends one: the payload's rule (JSON, 64-bit integers, bounded depth) and at most
    ``max_bytes`` of compact JSON.
    """
    try:
        check_payload(value, "result")
        size = result_bytes(value)
    except InvalidCommand as exc:
        return exc.message
    except ValueError as exc:
        return f"result: {exc}"
    if size > max_bytes:
        return f"result: {size} bytes as JSON, more than max_result_bytes {max_bytes}"
    return None


def checked_result(obj: Mapping[str, Any], prefix: str = "") -> Any:
    """The ``result`` of an ack's plain form, checked by the payload's rule: it is stored and
    snapshotted as JSON (JSON, 64-bit integers, bounded depth). Its size is the edges' check.

    Raises:
        InvalidCommand: naming ``<prefix>result``.
    """
    result = obj.get("result")
    check_payload(result, prefix + "result")
    return result
