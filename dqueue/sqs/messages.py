"""The checks of a message to send and of queue tags: SQS's content rules and size limits.

A message body and string attribute values are XML 1.0 characters (InvalidMessageContents
otherwise). A message is at most ``MAX_MESSAGE_BYTES``, counting the body and each attribute's
name, data type and value. Message attributes: at most 10; a name is 1 to 256 of letters,
digits, ``_``, ``-`` and ``.``, without ``..``, a leading or trailing ``.``, or an ``AWS.`` or
``Amazon.`` prefix; a data type is ``String``, ``Number`` or ``Binary`` with an optional
``.custom`` suffix; a value is a ``StringValue`` (a number for ``Number``) or a base64
``BinaryValue``, which the check replaces with the decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from dqueue.sqs.errors import SqsCode, SqsError

MAX_MESSAGE_BYTES = 1024 * 1024  # body plus attribute names, types and values
# SequenceNumber of a FIFO message: this plus the task's seq (its place in the log order of
# enqueues, replicated), so that it is 20 digits long, large, and increases within a group.
SEQUENCE_NUMBER_BASE = 10**19
MAX_MESSAGE_ATTRIBUTES = 10
MAX_TAGS = 50
_DATA_TYPE_RE = re.compile(r"(String|Number|Binary)(\.[\x21-\x7e]+)?")
_TAG_KEY_RE = re.compile(r"[\w.:/=+@ -]{1,128}", re.UNICODE)
_NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# XML 1.0 characters, what SQS accepts in a message body and string attribute values.
_INVALID_CHARS_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
ATTRIBUTE_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,256}")


def _invalid(message: str) -> SqsError:
    return SqsError(SqsCode.INVALID_PARAMETER_VALUE, message)


def check_message(message: dict[str, Any], where: str) -> int:
    """Check one message to send (its fields already typed); return its size in bytes.

    Args:
        message: MessageBody, MessageAttributes, MessageSystemAttributes, ... (JSON shape).
        where: the prefix naming the message in errors (``""`` or ``"Entries.3."``).
    """
    body = message["MessageBody"]
    if not body:
        raise _invalid(f"{where}MessageBody: must not be empty")
    bad = _INVALID_CHARS_RE.search(body)
    if bad is not None:
        raise SqsError(SqsCode.INVALID_MESSAGE_CONTENTS,
                       f"{where}MessageBody: invalid character U+{ord(bad.group()):04X}")
    size = len(body.encode("utf-8"))
    attributes = message.get("MessageAttributes", {})
    if len(attributes) > MAX_MESSAGE_ATTRIBUTES:
        raise _invalid(f"{where}MessageAttributes: at most {MAX_MESSAGE_ATTRIBUTES}")
    for name, value in attributes.items():
        size += check_attribute(name, value, f"{where}MessageAttributes.{name[:100]}")
    for name, value in message.get("MessageSystemAttributes", {}).items():
        if name != "AWSTraceHeader":
            raise SqsError(SqsCode.INVALID_ATTRIBUTE_NAME,
                           f"{where}MessageSystemAttributes: only AWSTraceHeader is allowed")
        check_attribute(name, value, f"{where}MessageSystemAttributes.{name}")
        if value["DataType"] != "String":
            raise _invalid(f"{where}MessageSystemAttributes.{name}: DataType must be String")
    if size > MAX_MESSAGE_BYTES:
        raise _invalid(f"{where}MessageBody: the message is {size} bytes, more than "
                       f"{MAX_MESSAGE_BYTES}")
    return size


def check_attribute(name: str, value: dict[str, Any], where: str) -> int:
    """Check one message attribute (BinaryValue becomes bytes); return its size in bytes."""
    lowered = name.lower()
    if (ATTRIBUTE_NAME_RE.fullmatch(name) is None or ".." in name or name.startswith(".")
            or name.endswith(".") or lowered.startswith(("aws.", "amazon."))):
        raise _invalid(f"{where}: a name is 1 to 256 of letters, digits, '_', '-', '.', "
                       "without '..', a leading or trailing '.', or an AWS./Amazon. prefix")
    data_type = value.get("DataType")
    if data_type is None:
        raise SqsError(SqsCode.MISSING_PARAMETER, f"{where}.DataType: required")
    if len(data_type) > 256 or _DATA_TYPE_RE.fullmatch(data_type) is None:
        raise _invalid(f"{where}.DataType: String, Number or Binary, with an optional "
                       "'.custom' suffix")
    is_binary = data_type.startswith("Binary")
    present = "BinaryValue" if is_binary else "StringValue"
    other = "StringValue" if is_binary else "BinaryValue"
    if other in value:
        raise _invalid(f"{where}.{other}: not allowed with DataType {data_type}")
    if present not in value:
        raise _invalid(f"{where}.{present}: required with DataType {data_type}")
    if is_binary:
        try:
            raw = base64.b64decode(value["BinaryValue"], validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"{where}.BinaryValue: must be base64") from None
        value["BinaryValue"] = raw
        size = len(raw)
    else:
        text = value["StringValue"]
        if _INVALID_CHARS_RE.search(text) is not None:
            raise SqsError(SqsCode.INVALID_MESSAGE_CONTENTS,
                           f"{where}.StringValue: invalid character")
        if data_type.startswith("Number") and (
                _NUMBER_RE.fullmatch(text) is None or len(text) > 80):
            raise _invalid(f"{where}.StringValue: not a number")
        if data_type.startswith("String") and not text:
            raise _invalid(f"{where}.StringValue: must not be empty")
        size = len(text.encode("utf-8"))
    return size + len(name.encode("utf-8")) + len(data_type.encode("utf-8"))


def check_tags(tags: dict[str, str]) -> None:
    """Check queue tags: at most 50, SQS's key characters, values up to 256 characters."""
    if len(tags) > MAX_TAGS:
        raise _invalid(f"Tags: at most {MAX_TAGS}")
    for key, value in tags.items():
        if _TAG_KEY_RE.fullmatch(key) is None or key.lower().startswith("aws:"):
            raise _invalid(f"Tags: invalid key {key[:100]!r}")
        if len(value) > 256:
            raise _invalid(f"Tags.{key}: a value is at most 256 characters")


def sequence_number(seq: int) -> str:
    """SQS's SequenceNumber of a FIFO message whose task has ``seq``: a large decimal number
    that increases with every message sent (so within each message group), as SQS describes
    it; every member derives the same one from the replicated task."""
    return str(SEQUENCE_NUMBER_BASE + seq)
