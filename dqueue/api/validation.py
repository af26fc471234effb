"""Request validation: body parsing and one checker per kind of field.

Every failure is an ``ApiError`` naming the field (``tasks[3].priority`` inside a batch), raised
before anything is sent to the Raft process: bad input never reaches the log.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import falcon

from dqueue.api.errors import ApiError, invalid

TASK_STATUSES = ("pending", "leased", "completed", "dead", "cancelled")
# A task type: used in query strings and metric labels, so kept to a tame alphabet.
TYPE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")
MAX_STRING_CHARS = 256
MAX_REASON_CHARS = 4_096
MAX_TYPES = 64
MAX_BATCH_TASKS = 1_000
# Payload limits: msgpack carries integers of 64 bits at most; nesting is bounded so that
# encoding and decoding never recurse deeply.
MIN_PAYLOAD_INT = -(1 << 63)
MAX_PAYLOAD_INT = (1 << 64) - 1
MAX_PAYLOAD_DEPTH = 32
# Field bounds.
MIN_PRIORITY = -(1 << 31)
MAX_PRIORITY = (1 << 31) - 1
MAX_MAX_RETRIES = 1_000
MAX_DELAY_SECONDS = 7 * 24 * 3_600
MAX_LEASE_SECONDS = 12 * 3_600
MAX_LEASE_TASKS = 100
MAX_LIST_LIMIT = 1_000
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every body (json.loads with options builds one per call).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# A surrogate escape (\ud800 to \udfff) or a raw surrogate in the text: only then may the parsed
# body hold a lone surrogate, which JSON accepts but no UTF-8 encoder (msgpack included) does.
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _lone_surrogate_path(value: Any, path: str, depth: int = 0) -> str | None:
    """The path of the first string (key or value) in ``value`` that is not valid Unicode
    text (it holds a lone surrogate), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if depth > 200:
        return None  # deeper than the JSON decoder's recursion allows
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                return path or "body"
            found = _lone_surrogate_path(item, name, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found = _lone_surrogate_path(item, f"{path}[{position}]", depth + 1)
            if found is not None:
                return found
    return None


def read_json_body(req: falcon.Request, max_body_bytes: int) -> dict[str, Any]:
    """Read and parse the JSON object body of ``req``; an empty body is ``{}``.

    Raises:
        ApiError: 413 too large, 415 not JSON, 400 invalid JSON or not an object.
    """
    length = req.content_length
    if length is not None and length > max_body_bytes:
        raise too_large(max_body_bytes)
    raw = req.bounded_stream.read(max_body_bytes + 1)
    if len(raw) > max_body_bytes:
        raise too_large(max_body_bytes)
    if not raw.strip():
        return {}
    media = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media != falcon.MEDIA_JSON and not media.endswith("+json"):
        raise ApiError(
            falcon.HTTP_415, "unsupported_media_type",
            "the body must be JSON with Content-Type: application/json", field="Content-Type",
        )
    try:
        # What json.loads does with bytes: detect UTF-8, -16 or -32, then decode the text.
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        body = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise invalid("body", f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("body", "the body must be a JSON object", code="invalid_json")
    if _MAYBE_SURROGATE.search(text) is not None:
        field = _lone_surrogate_path(body, "")
        if field is not None:
            # Refused here, alone: a string that cannot be encoded would otherwise fail the
            # whole coalesced command it joined, and every other client's request with it.
            raise invalid(field or "body", f"{field or 'body'}: a lone surrogate (\\ud800 to "
                          "\\udfff without its pair) is not valid Unicode text",
                          code="invalid_field")
    return body


def too_large(max_body_bytes: int) -> ApiError:
    """The 413 of a body over ``max_body_bytes``."""
    return ApiError(
        falcon.HTTP_413, "body_too_large",
        f"the body is larger than max_body_bytes ({max_body_bytes})", field="body",
    )


def check_keys(
    body: dict[str, Any], allowed: frozenset[str], required: tuple[str, ...] = (),
    prefix: str = "",
) -> None:
    """Refuse unknown and missing keys.

    Raises:
        ApiError: 400 ``unknown_field`` or ``missing_field``.
    """
    for key in body:
        if key not in allowed:
            # A msgpack map from the worker gateway may have keys of any type (int, None,
            # bytes): name them by their repr rather than failing to build the message.
            name = prefix + (key if isinstance(key, str) else repr(key))
            raise invalid(name, f"unknown field {name}", code="unknown_field")
    for key in required:
        if body.get(key) is None:
            raise invalid(prefix + key, f"{prefix + key} is required", code="missing_field")


def is_plain_string(value: str, max_chars: int = MAX_STRING_CHARS) -> bool:
    """A non-empty string within ``max_chars`` without control characters."""
    return 0 < len(value) <= max_chars and _CONTROL_CHARS.search(value) is None


def opt_string(
    body: dict[str, Any], name: str, max_chars: int = MAX_STRING_CHARS,
    pattern: re.Pattern[str] | None = None, prefix: str = "",
) -> str | None:
    """A string field, None when absent or null.

    Raises:
        ApiError: when present and not a non-empty string within the limits.
    """
    value = body.get(name)
    if value is None:
        return None
    field = prefix + name
    if not isinstance(value, str) or not value:
        raise invalid(field, f"{field} must be a non-empty string")
    if len(value) > max_chars:
        raise invalid(field, f"{field} must be at most {max_chars} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise invalid(field, f"{field} must match {pattern.pattern}")
    if pattern is None and max_chars <= MAX_STRING_CHARS and _CONTROL_CHARS.search(value):
        raise invalid(field, f"{field} must not contain control characters")
    return value


def opt_int(
    body: dict[str, Any], name: str, low: int, high: int, prefix: str = ""
) -> int | None:
    """An integer field in ``[low, high]``, None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    field = prefix + name
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(field, f"{field} must be an integer")
    if not low <= value <= high:
        raise invalid(field, f"{field} must be between {low} and {high}")
    return value


def opt_seconds_ms(
    body: dict[str, Any], name: str, low_s: float, high_s: float, prefix: str = "",
    exclusive_low: bool = False,
) -> int | None:
    """A duration in seconds (fractions allowed) returned as milliseconds, None when absent."""
    value = body.get(name)
    if value is None:
        return None
    field = prefix + name
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise invalid(field, f"{field} must be a number of seconds")
    too_low = value <= low_s if exclusive_low else value < low_s
    if too_low or value > high_s:
        bound = "above" if exclusive_low else "at least"
        raise invalid(field, f"{field} must be {bound} {low_s} and at most {high_s} seconds")
    return max(1, round(value * 1000)) if exclusive_low else round(value * 1000)


def opt_bool(body: dict[str, Any], name: str, prefix: str = "") -> bool | None:
    """A boolean field, None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(prefix + name, f"{prefix + name} must be true or false")
    return value


def opt_types(body: dict[str, Any], name: str = "types") -> list[str] | None:
    """A list of 1 to MAX_TYPES task types, None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TYPES:
        raise invalid(name, f"{name} must be a list of 1 to {MAX_TYPES} task types")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not TYPE_PATTERN.fullmatch(item):
            raise invalid(f"{name}[{i}]", f"{name}[{i}] must match {TYPE_PATTERN.pattern}")
    return list(dict.fromkeys(value))


def check_payload(value: Any, field: str = "payload") -> None:
    """Check that a JSON value fits the wire: bounded depth, 64-bit integers, finite floats.

    Raises:
        ApiError: naming ``field``.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth >= MAX_PAYLOAD_DEPTH:
                raise invalid(field, f"{field} is nested deeper than {MAX_PAYLOAD_DEPTH}")
            for child in item.values() if kind is dict else item:
                child_kind = type(child)
                if child_kind is str or child is None or child_kind is bool:
                    continue  # the common leaves, checked without a trip through the stack
                stack.append((child, depth + 1))
        elif kind is int:
            if not MIN_PAYLOAD_INT <= item <= MAX_PAYLOAD_INT:
                raise invalid(field, f"{field} holds an integer outside 64 bits")
        elif kind is float and not math.isfinite(item):
            raise invalid(field, f"{field} holds a number too large for JSON")


def task_id(value: str) -> str:
    """A task id from the path; anything that cannot be an id is simply not found."""
    if not value or len(value) > 128 or _CONTROL_CHARS.search(value):
        raise ApiError(falcon.HTTP_404, "not_found", f"no task {value[:128]!r}", field="id")
    return value


def query_params(
    req: falcon.Request, allowed: frozenset[str]
) -> dict[str, str]:
    """The query string as a dict, refusing unknown or repeated parameters."""
    params: dict[str, str] = {}
    for name, value in req.params.items():
        if name not in allowed:
            raise invalid(name, f"unknown query parameter {name}", code="unknown_field")
        if not isinstance(value, str):
            raise invalid(name, f"{name} must be given once")
        params[name] = value
    return params
