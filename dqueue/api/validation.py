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
from dqueue.protocol.errors import ErrorCode
from dqueue.queue import fields
from dqueue.queue.fields import IntRule, InvalidCommand, TextRule
from dqueue.queue.task import TaskStatus

# The statuses a listing may filter on: the queue's own.
TASK_STATUSES = tuple(status.value for status in TaskStatus)
# The field rules and bounds are the queue's (dqueue/queue/fields.py); these names only refer to
# them, for the resources and the OpenAPI description. What HTTP adds is below: the limits of
# its own fields, which no command carries.
TYPE_PATTERN = fields.TYPE_PATTERN
MAX_STRING_CHARS = fields.ID.max_chars
MAX_REASON_CHARS = fields.REASON.max_chars
MAX_TYPES = fields.MAX_TYPES
MAX_BATCH_TASKS = fields.MAX_BATCH
MIN_PRIORITY = fields.PRIORITY.low
MAX_PRIORITY = fields.PRIORITY.high
MAX_MAX_RETRIES = fields.MAX_RETRIES.high
MAX_DELAY_SECONDS = fields.DELAY_MS.high // 1000
MAX_LEASE_SECONDS = fields.LEASE_MS.high // 1000
MAX_LEASE_TASKS = fields.LEASE_MAX_TASKS.high
# HTTP's own: a page of a listing, and a listing cursor (opaque, from an earlier page).
MAX_LIST_LIMIT = 1_000
MAX_CURSOR_CHARS = 256


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
            falcon.HTTP_415, ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON with Content-Type: application/json", field="Content-Type",
        )
    try:
        # What json.loads does with bytes: detect UTF-8, -16 or -32, then decode the text.
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        body = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise invalid("body", f"the body is not valid JSON: {exc}",
                      code=ErrorCode.INVALID_JSON) from None
    if not isinstance(body, dict):
        raise invalid("body", "the body must be a JSON object", code=ErrorCode.INVALID_JSON)
    if _MAYBE_SURROGATE.search(text) is not None:
        field = _lone_surrogate_path(body, "")
        if field is not None:
            # Refused here, alone: a string that cannot be encoded would otherwise fail the
            # whole coalesced command it joined, and every other client's request with it.
            raise invalid(field or "body", f"{field or 'body'}: a lone surrogate (\\ud800 to "
                          "\\udfff without its pair) is not valid Unicode text",
                          code=ErrorCode.INVALID_FIELD)
    return body


def too_large(max_body_bytes: int) -> ApiError:
    """The 413 of a body over ``max_body_bytes``."""
    return ApiError(
        falcon.HTTP_413, ErrorCode.BODY_TOO_LARGE,
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
            raise invalid(name, f"unknown field {name}", code=ErrorCode.UNKNOWN_FIELD)
    for key in required:
        if body.get(key) is None:
            raise invalid(prefix + key, f"{prefix + key} is required", code=ErrorCode.MISSING_FIELD)


def _refused(exc: InvalidCommand) -> ApiError:
    """The 400 of a field that a queue field rule refused."""
    return invalid(exc.field, exc.message)


def opt_text(
    body: dict[str, Any], name: str, rule: TextRule, prefix: str = ""
) -> str | None:
    """A string field checked by a queue field rule, None when absent or null.

    Raises:
        ApiError: 400 ``invalid_field`` naming ``prefix + name`` when the rule refuses it.
    """
    return _opt_checked(body, name, rule, prefix)


def opt_field_int(
    body: dict[str, Any], name: str, rule: IntRule, prefix: str = ""
) -> int | None:
    """An integer field checked by a queue field rule, None when absent or null (raises like
    ``opt_text``)."""
    return _opt_checked(body, name, rule, prefix)


def _opt_checked(body: dict[str, Any], name: str, rule: TextRule | IntRule,
                 prefix: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    try:
        return rule.check(value, prefix + name)
    except InvalidCommand as exc:
        raise _refused(exc) from None


def opt_int(
    body: dict[str, Any], name: str, low: int, high: int, prefix: str = ""
) -> int | None:
    """An integer field of the channel's own (no command carries it) in ``[low, high]``, None
    when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    try:
        return fields.check_int(value, low, high, prefix + name)
    except InvalidCommand as exc:
        raise _refused(exc) from None


def opt_seconds_ms(
    body: dict[str, Any], name: str, rule_ms: IntRule, prefix: str = ""
) -> int | None:
    """A duration in seconds (fractions allowed) for a field in milliseconds checked by
    ``rule_ms``, returned as milliseconds; None when absent or null.

    A rule that starts at 0 takes 0 seconds; one that starts above it takes any number of
    seconds above 0, rounded up to its least milliseconds (a lease of 0.0001 s lasts 1 ms).
    """
    value = body.get(name)
    if value is None:
        return None
    field = prefix + name
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise invalid(field, f"{field} must be a number of seconds")
    high_s = rule_ms.high / 1000
    if rule_ms.low <= 0:
        if not 0 <= value <= high_s:
            raise invalid(field, f"{field} must be at least 0 and at most {high_s:g} seconds")
        return round(value * 1000)
    if not 0 < value <= high_s:
        raise invalid(field, f"{field} must be above 0 and at most {high_s:g} seconds")
    if rule_ms.low > 1 and value * 1000 < rule_ms.low:  # a bound of whole seconds, not 1 ms
        raise invalid(field, f"{field} must be at least {rule_ms.low / 1000:g} and at most "
                             f"{high_s:g} seconds")
    return max(rule_ms.low, round(value * 1000))


def opt_bool(body: dict[str, Any], name: str, prefix: str = "") -> bool | None:
    """A boolean field, None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(prefix + name, f"{prefix + name} must be true or false")
    return value


def opt_types(body: dict[str, Any], name: str = "types") -> list[str] | None:
    """A list of 1 to ``MAX_TYPES`` task types, without repeats; None when absent or null."""
    return _opt_names(body, name, fields.TASK_TYPE, MAX_TYPES, "task types")


def opt_queues(body: dict[str, Any], name: str = "queues") -> list[str] | None:
    """A list of 1 to ``fields.MAX_QUEUES`` queue names, without repeats; None when absent or
    null (the lease then takes from the default queue)."""
    return _opt_names(body, name, fields.QUEUE_NAME, fields.MAX_QUEUES, "queue names")


def _opt_names(body: dict[str, Any], name: str, rule: TextRule, max_items: int,
               what: str) -> list[str] | None:
    """A list of 1 to ``max_items`` names each checked by ``rule``, repeats dropped (the first
    kept, in order); None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= max_items:
        raise invalid(name, f"{name} must be a list of 1 to {max_items} {what}")
    try:
        for i, item in enumerate(value):
            rule.check(item, f"{name}[{i}]")
    except InvalidCommand as exc:
        raise _refused(exc) from None
    return list(dict.fromkeys(value))


def check_payload(value: Any, field: str = "payload") -> None:
    """Check a payload with the queue's rule (``fields.check_payload``).

    Raises:
        ApiError: 400 ``invalid_field`` naming ``field``.
    """
    try:
        fields.check_payload(value, field)
    except InvalidCommand as exc:
        raise _refused(exc) from None


def task_id(value: str) -> str:
    """A task id from the path; anything that cannot be an id is simply not found."""
    if not fields.TASK_ID.accepts(value):
        raise ApiError(falcon.HTTP_404, ErrorCode.NOT_FOUND, f"no task {value[:128]!r}", field="id")
    return value


def query_params(
    req: falcon.Request, allowed: frozenset[str]
) -> dict[str, str]:
    """The query string as a dict, refusing unknown or repeated parameters."""
    params: dict[str, str] = {}
    for name, value in req.params.items():
        if name not in allowed:
            raise invalid(name, f"unknown query parameter {name}", code=ErrorCode.UNKNOWN_FIELD)
        if not isinstance(value, str):
            raise invalid(name, f"{name} must be given once")
        params[name] = value
    return params
