"""SQS queue attributes <-> dqueue queue settings, with SQS's ranges and errors.

SQS attributes are strings; dqueue's queue settings are a plain dict with these keys (absent
means "the queue's default"):

==========================  =========================================================
SQS attribute               dqueue setting
==========================  =========================================================
VisibilityTimeout (s)       ``lease_ms``
DelaySeconds (s)            ``delay_ms``
MessageRetentionPeriod (s)  ``retention_ms``
MaximumMessageSize (bytes)  ``max_message_bytes``
ReceiveMessageWaitTime...   ``wait_ms``
RedrivePolicy (JSON)        ``dead_letter_queue`` (a queue name) and ``max_retries`` =
                            ``maxReceiveCount - 1``; an empty RedrivePolicy sets both None
                            (no dead-letter queue: received until retention, as in SQS)
FifoQueue                   ``fifo`` (at creation only)
ContentBasedDeduplication   ``content_dedup`` (FIFO queues only)
==========================  =========================================================

Attributes SQS has that dqueue stores but does not act on (Policy, RedriveAllowPolicy, the
KMS and SSE ones, DeduplicationScope, FifoThroughputLimit) are checked and returned verbatim in
``QueueAttributes.passthrough``. Errors: an unknown or read-only name -> InvalidAttributeName; a
value out of range or malformed -> InvalidAttributeValue, naming the attribute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dqueue.sqs.errors import SqsCode, SqsError

# name -> (low, high, setting key, milliseconds per unit) of the integer attributes.
INT_ATTRIBUTES: dict[str, tuple[int, int, str, int]] = {
    "VisibilityTimeout": (0, 43200, "lease_ms", 1000),
    "DelaySeconds": (0, 900, "delay_ms", 1000),
    "MessageRetentionPeriod": (60, 1209600, "retention_ms", 1000),
    "MaximumMessageSize": (1024, 1048576, "max_message_bytes", 1),
    "ReceiveMessageWaitTimeSeconds": (0, 20, "wait_ms", 1000),
}
# What GetQueueAttributes answers for a setting the queue does not have.
DEFAULTS: dict[str, int] = {
    "VisibilityTimeout": 30, "DelaySeconds": 0, "MessageRetentionPeriod": 345600,
    "MaximumMessageSize": 1048576, "ReceiveMessageWaitTimeSeconds": 0,
}
MAX_RECEIVE_COUNT = 1000
PASSTHROUGH = frozenset({
    "Policy", "RedriveAllowPolicy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled", "DeduplicationScope", "FifoThroughputLimit",
})
READ_ONLY = frozenset({
    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible", "CreatedTimestamp", "LastModifiedTimestamp",
    "QueueArn",
})
SETTABLE = frozenset(INT_ATTRIBUTES) | PASSTHROUGH | {
    "RedrivePolicy", "FifoQueue", "ContentBasedDeduplication"}
QUEUE_ATTRIBUTE_NAMES = SETTABLE | READ_ONLY
_BOOL = {"true": True, "false": False}
_CHOICES = {
    "DeduplicationScope": ("messageGroup", "queue"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}
_INT_RE = re.compile(r"[0-9]{1,10}")
_ARN_RE = re.compile(r"arn:aws:sqs:[a-z0-9-]{1,32}:[0-9]{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?")


def _bad_value(name: str, why: str) -> SqsError:
    return SqsError(SqsCode.INVALID_ATTRIBUTE_VALUE,
                    f"Invalid value for the parameter {name}: {why}")


@dataclass(frozen=True)
class QueueAttributes:
    """Checked attributes: the dqueue settings, and the attributes kept verbatim."""

    settings: dict[str, Any] = field(default_factory=dict)
    passthrough: dict[str, str] = field(default_factory=dict)


def _int_value(name: str, text: str) -> int:
    low, high = INT_ATTRIBUTES[name][:2]
    if _INT_RE.fullmatch(text) is None or not low <= int(text) <= high:
        raise _bad_value(name, f"an integer from {low} to {high}")
    return int(text)


def _json_object(name: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise _bad_value(name, "not valid JSON") from None
    if not isinstance(value, dict):
        raise _bad_value(name, "must be a JSON object")
    return value


def _redrive(text: str, queue_name_of_arn: Any) -> tuple[str | None, int | None]:
    """(dead-letter queue name, max_retries) of a RedrivePolicy; ``""`` removes it."""
    if text == "":
        return None, None
    policy = _json_object("RedrivePolicy", text)
    unknown = set(policy) - {"deadLetterTargetArn", "maxReceiveCount"}
    if unknown:
        raise _bad_value("RedrivePolicy", f"unknown member {sorted(unknown)[0][:100]!r}")
    arn = policy.get("deadLetterTargetArn")
    count = policy.get("maxReceiveCount")
    if type(arn) is not str or _ARN_RE.fullmatch(arn) is None:
        raise _bad_value("RedrivePolicy", "deadLetterTargetArn must be a queue ARN")
    if type(count) is str and _INT_RE.fullmatch(count):
        count = int(count)  # SQS accepts the count as a number or a numeric string
    if type(count) is not int or not 1 <= count <= MAX_RECEIVE_COUNT:
        raise _bad_value("RedrivePolicy", f"maxReceiveCount must be 1 to {MAX_RECEIVE_COUNT}")
    try:
        dead_letter_queue = queue_name_of_arn(arn)
    except SqsError as exc:
        raise _bad_value("RedrivePolicy", exc.message) from None
    return dead_letter_queue, count - 1


def _redrive_allow(text: str) -> None:
    policy = _json_object("RedriveAllowPolicy", text)
    permission = policy.get("redrivePermission")
    if permission not in ("allowAll", "denyAll", "byQueue"):
        raise _bad_value("RedriveAllowPolicy",
                         "redrivePermission must be allowAll, denyAll or byQueue")
    arns = policy.get("sourceQueueArns", [])
    if (type(arns) is not list or len(arns) > 10
            or any(type(a) is not str or _ARN_RE.fullmatch(a) is None for a in arns)):
        raise _bad_value("RedriveAllowPolicy", "sourceQueueArns: up to 10 queue ARNs")
    if (permission == "byQueue") != bool(arns):
        raise _bad_value("RedriveAllowPolicy", "sourceQueueArns goes with byQueue only")


def parse_attributes(attributes: Mapping[str, str], *, queue_name: str, creating: bool,
                     queue_name_of_arn: Any) -> QueueAttributes:
    """Check SQS queue attributes and map them to dqueue settings.

    Args:
        attributes: attribute name -> string value, as CreateQueue/SetQueueAttributes carry.
        queue_name: the queue's name (its ``.fifo`` suffix decides what is allowed).
        creating: True for CreateQueue (FifoQueue may be given), False for SetQueueAttributes.
        queue_name_of_arn: ARN -> queue name, raising SqsError (``Account.name_from_arn``).

    Raises:
        SqsError: InvalidAttributeName or InvalidAttributeValue naming the attribute.
    """
    is_fifo = queue_name.endswith(".fifo")
    settings: dict[str, Any] = {}
    passthrough: dict[str, str] = {}
    for name, text in attributes.items():
        if name not in SETTABLE:
            raise SqsError(SqsCode.INVALID_ATTRIBUTE_NAME,
                           f"Unknown or read-only attribute {name[:100]!r}")
        if type(text) is not str:
            raise _bad_value(name, "must be a string")
        if name in INT_ATTRIBUTES:
            unit_ms = INT_ATTRIBUTES[name][3]
            settings[INT_ATTRIBUTES[name][2]] = _int_value(name, text) * unit_ms
        elif name == "RedrivePolicy":
            settings["dead_letter_queue"], settings["max_retries"] = _redrive(
                text, queue_name_of_arn)
        elif name == "FifoQueue":
            if not creating:
                raise SqsError(SqsCode.INVALID_ATTRIBUTE_NAME,
                               "FifoQueue can only be set when the queue is created")
            if _BOOL.get(text) is not is_fifo:
                raise _bad_value(name, "true exactly when the queue name ends in .fifo")
            settings["fifo"] = is_fifo
        elif name == "ContentBasedDeduplication":
            if not is_fifo:
                raise SqsError(SqsCode.INVALID_ATTRIBUTE_NAME,
                               "ContentBasedDeduplication is for FIFO queues only")
            if text not in _BOOL:
                raise _bad_value(name, "true or false")
            settings["content_dedup"] = _BOOL[text]
        else:
            _check_passthrough(name, text, is_fifo)
            passthrough[name] = text
    if creating and is_fifo and "fifo" not in settings:
        raise _bad_value("FifoQueue", "a queue whose name ends in .fifo needs FifoQueue=true")
    if creating:
        settings.setdefault("fifo", is_fifo)
    return QueueAttributes(settings, passthrough)


def _check_passthrough(name: str, text: str, is_fifo: bool) -> None:
    if name == "RedriveAllowPolicy":
        _redrive_allow(text)
    elif name == "Policy":
        if text:
            _json_object(name, text)
    elif name == "SqsManagedSseEnabled":
        if text not in _BOOL:
            raise _bad_value(name, "true or false")
    elif name == "KmsDataKeyReusePeriodSeconds":
        if _INT_RE.fullmatch(text) is None or not 60 <= int(text) <= 86400:
            raise _bad_value(name, "an integer from 60 to 86400")
    elif name in _CHOICES:
        if not is_fifo:
            raise SqsError(SqsCode.INVALID_ATTRIBUTE_NAME, f"{name} is for FIFO queues only")
        if text not in _CHOICES[name]:
            raise _bad_value(name, " or ".join(_CHOICES[name]))
    elif len(text) > 2048:  # KmsMasterKeyId
        raise _bad_value(name, "too long")


def render_attributes(settings: Mapping[str, Any], passthrough: Mapping[str, str], *,
                      queue_name: str, queue_arn: str, dead_letter_arn: str | None,
                      counts: Mapping[str, int], names: list[str] | None) -> dict[str, str]:
    """The GetQueueAttributes answer of a queue, as SQS strings.

    Args:
        settings: the queue's dqueue settings (keys of the module table).
        passthrough: the verbatim attributes stored with the queue.
        queue_name: the queue's name.
        queue_arn: the queue's ARN.
        dead_letter_arn: the ARN of ``settings["dead_letter_queue"]``, if any.
        counts: read-only attributes the caller computed (ApproximateNumberOfMessages,
            CreatedTimestamp in seconds, ...); other keys are ignored.
        names: the attribute names asked for (``All`` for every one), None or empty for none.
    """
    values: dict[str, str] = {"QueueArn": queue_arn}
    for name, (_, _, key, unit_ms) in INT_ATTRIBUTES.items():
        value = settings.get(key)
        values[name] = str(DEFAULTS[name] if value is None else value // unit_ms)
    if settings.get("dead_letter_queue") and dead_letter_arn is not None:
        receives = (settings.get("max_retries") or 0) + 1
        values["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": receives},
            separators=(",", ":"))
    if queue_name.endswith(".fifo"):
        values["FifoQueue"] = "true"
        values["ContentBasedDeduplication"] = "true" if settings.get("content_dedup") else "false"
    values.update(passthrough)
    for name in READ_ONLY - {"QueueArn"}:
        if name in counts:
            values[name] = str(int(counts[name]))
    if not names:
        return {}
    if "All" in names:
        return values
    return {name: values[name] for name in names if name in values}
