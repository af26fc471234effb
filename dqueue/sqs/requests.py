"""Recognise and parse an SQS request, JSON or Query protocol, into one checked shape.

``parse_request(method, path, query, headers, body)`` returns an ``SqsRequest``: the action
name and its parameters in the JSON protocol's shape (``{"QueueUrl": ..., "Entries": [...]}``),
whichever protocol carried them, or raises ``SqsError``. It never raises anything else, on any
input (a hypothesis test holds it to that).

- JSON protocol: ``POST`` with ``X-Amz-Target: AmazonSQS.<Action>`` and
  ``Content-Type: application/x-amz-json-1.0``; the body is a JSON object.
- Query protocol: form-encoded ``Action=<Action>&...`` in the body (``POST``) or the URL query;
  lists and maps are flattened (``AttributeName.1``, ``Attribute.1.Name``/``.Value``,
  ``MessageAttribute.1.Name``/``.Value.DataType``, ``SendMessageBatchRequestEntry.1.Id``, ...).
  An older SDK may post to the queue URL itself instead of passing ``QueueUrl``.

Differences from the JSON shape, on purpose: ``BinaryValue`` of a message attribute is the
decoded ``bytes`` (the MD5 and the store need them), and integers are ``int``. Every value is
checked against SQS's rules and limits (module constants); queue attribute names and values are
checked by ``dqueue.sqs.attributes`` and receipt handles decoded by ``dqueue.sqs.names`` where
the caller holds the key. In a batch, an entry with a bad value of its own (a delay out of
range, a bad body or attribute) fails alone, as in SQS: it is reported in
``SqsRequest.failed``; a malformed batch (no entries, more than 10, bad or repeated ids, over
1 MiB in all) fails the request.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any
from urllib.parse import parse_qsl

from dqueue.sqs.attributes import QUEUE_ATTRIBUTE_NAMES
from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.messages import ATTRIBUTE_NAME_RE, MAX_MESSAGE_BYTES, check_message, check_tags
from dqueue.sqs.names import MAX_RECEIPT_HANDLE_CHARS, check_queue_name

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # a 1 MiB batch, form-encoded, fits
MAX_BATCH_ENTRIES = 10
MAX_URL_CHARS = 2048
INT_RANGES: dict[str, tuple[int, int]] = {
    "DelaySeconds": (0, 900),
    "VisibilityTimeout": (0, 43200),
    "MaxNumberOfMessages": (1, 10),
    "WaitTimeSeconds": (0, 20),
    "MaxResults": (1, 1000),
    "MaxNumberOfMessagesPerSecond": (1, 500),
}
MESSAGE_SYSTEM_ATTRIBUTE_NAMES = frozenset({
    "All", "SenderId", "SentTimestamp", "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp", "SequenceNumber", "MessageDeduplicationId",
    "MessageGroupId", "AWSTraceHeader", "DeadLetterQueueSourceArn",
})
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
TARGET_PREFIX = "AmazonSQS."
# Query keys that are not parameters: the protocol's own and those of signatures.
_QUERY_IGNORED = frozenset({"Action", "Version", "AWSAccessKeyId", "SignatureVersion",
                            "SignatureMethod", "Signature", "Timestamp", "Expires"})
_INT_RE = re.compile(r"-?[0-9]{1,12}")
_INDEX_RE = re.compile(r"[1-9][0-9]{0,3}")
_BATCH_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")  # alphanumerics and punctuation


class Protocol(StrEnum):
    """Which SQS protocol carried a request (the answer uses the same)."""

    JSON = "json"
    QUERY = "query"


class Kind(Enum):
    """The shape of one parameter."""

    STR = "string"
    INT = "integer"
    STR_LIST = "list of strings"
    STR_MAP = "map of strings"
    ATTR_MAP = "map of message attributes"
    ENTRIES = "list of batch entries"


@dataclass(frozen=True)
class Field:
    """One parameter: its kind, its Query protocol name if different, its map key names."""

    kind: Kind
    query: str | None = None
    keys: tuple[str, str] = ("Name", "Value")
    entry: Mapping[str, Field] | None = None


_URL = Field(Kind.STR)
_STR = Field(Kind.STR)
_INT = Field(Kind.INT)
_HANDLE = Field(Kind.STR)
_QUEUE_ATTRS = Field(Kind.STR_MAP, "Attribute")
_TAGS = Field(Kind.STR_MAP, "Tag", ("Key", "Value"))
_MESSAGE = {
    "MessageBody": _STR, "DelaySeconds": _INT,
    "MessageAttributes": Field(Kind.ATTR_MAP, "MessageAttribute"),
    "MessageSystemAttributes": Field(Kind.ATTR_MAP, "MessageSystemAttribute"),
    "MessageDeduplicationId": _STR, "MessageGroupId": _STR,
}


def _entries(action: str, members: Mapping[str, Field]) -> Field:
    return Field(Kind.ENTRIES, f"{action}RequestEntry", entry={"Id": _STR, **members})


SCHEMAS: dict[str, dict[str, Field]] = {
    "CreateQueue": {"QueueName": _STR, "Attributes": _QUEUE_ATTRS, "tags": _TAGS},
    "DeleteQueue": {"QueueUrl": _URL},
    "GetQueueUrl": {"QueueName": _STR, "QueueOwnerAWSAccountId": _STR},
    "ListQueues": {"QueueNamePrefix": _STR, "NextToken": _STR, "MaxResults": _INT},
    "GetQueueAttributes": {"QueueUrl": _URL,
                           "AttributeNames": Field(Kind.STR_LIST, "AttributeName")},
    "SetQueueAttributes": {"QueueUrl": _URL, "Attributes": _QUEUE_ATTRS},
    "PurgeQueue": {"QueueUrl": _URL},
    "SendMessage": {"QueueUrl": _URL, **_MESSAGE},
    "SendMessageBatch": {"QueueUrl": _URL, "Entries": _entries("SendMessageBatch", _MESSAGE)},
    "ReceiveMessage": {
        "QueueUrl": _URL, "AttributeNames": Field(Kind.STR_LIST, "AttributeName"),
        "MessageSystemAttributeNames": Field(Kind.STR_LIST, "MessageSystemAttributeName"),
        "MessageAttributeNames": Field(Kind.STR_LIST, "MessageAttributeName"),
        "MaxNumberOfMessages": _INT, "VisibilityTimeout": _INT, "WaitTimeSeconds": _INT,
        "ReceiveRequestAttemptId": _STR,
    },
    "DeleteMessage": {"QueueUrl": _URL, "ReceiptHandle": _HANDLE},
    "DeleteMessageBatch": {"QueueUrl": _URL, "Entries": _entries(
        "DeleteMessageBatch", {"ReceiptHandle": _HANDLE})},
    "ChangeMessageVisibility": {"QueueUrl": _URL, "ReceiptHandle": _HANDLE,
                                "VisibilityTimeout": _INT},
    "ChangeMessageVisibilityBatch": {"QueueUrl": _URL, "Entries": _entries(
        "ChangeMessageVisibilityBatch", {"ReceiptHandle": _HANDLE, "VisibilityTimeout": _INT})},
    "ListDeadLetterSourceQueues": {"QueueUrl": _URL, "NextToken": _STR, "MaxResults": _INT},
    "StartMessageMoveTask": {"SourceArn": _STR, "DestinationArn": _STR,
                             "MaxNumberOfMessagesPerSecond": _INT},
    "ListMessageMoveTasks": {"SourceArn": _STR, "MaxResults": _INT},
    "CancelMessageMoveTask": {"TaskHandle": _STR},
    "TagQueue": {"QueueUrl": _URL, "Tags": _TAGS},
    "UntagQueue": {"QueueUrl": _URL, "TagKeys": Field(Kind.STR_LIST, "TagKey")},
    "ListQueueTags": {"QueueUrl": _URL},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "CreateQueue": ("QueueName",), "GetQueueUrl": ("QueueName",),
    "SendMessage": ("QueueUrl", "MessageBody"), "SendMessageBatch": ("QueueUrl", "Entries"),
    "DeleteMessage": ("QueueUrl", "ReceiptHandle"),
    "DeleteMessageBatch": ("QueueUrl", "Entries"),
    "ChangeMessageVisibility": ("QueueUrl", "ReceiptHandle", "VisibilityTimeout"),
    "ChangeMessageVisibilityBatch": ("QueueUrl", "Entries"),
    "SetQueueAttributes": ("QueueUrl", "Attributes"), "TagQueue": ("QueueUrl", "Tags"),
    "UntagQueue": ("QueueUrl", "TagKeys"), "StartMessageMoveTask": ("SourceArn",),
    "ListMessageMoveTasks": ("SourceArn",), "CancelMessageMoveTask": ("TaskHandle",),
}
_ENTRY_REQUIRED: dict[str, tuple[str, ...]] = {
    "SendMessageBatch": ("Id", "MessageBody"), "DeleteMessageBatch": ("Id", "ReceiptHandle"),
    "ChangeMessageVisibilityBatch": ("Id", "ReceiptHandle"),
}


@dataclass(frozen=True)
class SqsRequest:
    """A parsed, checked SQS request.

    ``failed`` holds the batch entries refused on their own (entry id -> error, in request
    order); they are not in ``params["Entries"]``, and the answer lists them in ``Failed``.
    """

    action: str
    params: dict[str, Any]
    protocol: Protocol
    failed: dict[str, SqsError] = dataclasses.field(default_factory=dict)


def _invalid(message: str) -> SqsError:
    return SqsError(SqsCode.INVALID_PARAMETER_VALUE, message)


def _malformed(message: str) -> SqsError:
    return SqsError(SqsCode.MALFORMED_REQUEST, message)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def is_sqs_request(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request looks like SQS's (the node's router sends it here), cheaply."""
    target = _header(headers, "x-amz-target")
    if target is not None:
        return target.startswith(TARGET_PREFIX)
    content_type = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    return method == "POST" and content_type == FORM_CONTENT_TYPE


def parse_request(method: str, path: str, query: str, headers: Mapping[str, str],
                  body: bytes) -> SqsRequest:
    """Parse and check an SQS request of either protocol (module docstring).

    Args:
        method: the HTTP method.
        path: the request path, without the query.
        query: the raw URL query string, ``""`` if none.
        headers: the request headers (names in any case).
        body: the body bytes.

    Raises:
        SqsError: InvalidAction, MalformedQueryString, MissingParameter,
            InvalidParameterValue, ... naming the field at fault.
    """
    if len(body) > MAX_REQUEST_BYTES or len(query) > MAX_REQUEST_BYTES:
        raise _invalid(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    target = _header(headers, "x-amz-target")
    content_type = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if target is not None:
        if method != "POST" or content_type != JSON_CONTENT_TYPE:
            raise _malformed(f"X-Amz-Target requests are POST with Content-Type "
                             f"{JSON_CONTENT_TYPE}")
        action = target.removeprefix(TARGET_PREFIX)
        if action == target or action not in SCHEMAS:
            raise SqsError(SqsCode.INVALID_ACTION, f"X-Amz-Target: unknown action {target[:100]!r}")
        params = _from_json(SCHEMAS[action], _json_object(body), "")
        protocol = Protocol.JSON
    else:
        pairs = _query_pairs(query)
        if method == "POST" and content_type == FORM_CONTENT_TYPE:
            pairs += _query_pairs(_text(body, "body"))
        action, tree = _query_tree(pairs)
        params = _from_tree(SCHEMAS[action], tree, "")
        if "QueueUrl" in SCHEMAS[action] and "QueueUrl" not in params and path.count("/") == 2:
            host = _header(headers, "host") or "localhost"
            params["QueueUrl"] = f"http://{host}{path}"
        protocol = Protocol.QUERY
    failed: dict[str, SqsError] = {}
    _check(action, params, failed)
    return SqsRequest(action, params, protocol, failed)


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(f"{where}: not UTF-8") from None


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(_text(body, "body"))
    except (ValueError, RecursionError):
        raise SqsError(SqsCode.MALFORMED_REQUEST, "body: not valid JSON") from None
    if not isinstance(value, dict):
        raise _malformed("body: must be a JSON object")
    return value


def _query_pairs(text: str) -> list[tuple[str, str]]:
    if not text:
        return []
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict",
                         max_num_fields=20000)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("not a valid form-encoded query") from None


def _query_tree(pairs: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
    """The action and the nested tree of a flattened Query parameter list."""
    action: str | None = None
    tree: dict[str, Any] = {}
    for key, value in pairs:
        if key == "Action":
            if action is not None:
                raise _malformed("Action: given twice")
            action = value
            continue
        if key in _QUERY_IGNORED or key.startswith("X-Amz-"):
            continue
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise _malformed(f"{key}: conflicts with another parameter")
            node = child
        if parts[-1] in node:
            raise _malformed(f"{key}: given twice or conflicts with another parameter")
        node[parts[-1]] = value
    if action is None:
        raise SqsError(SqsCode.MISSING_PARAMETER, "Action: required")
    if action not in SCHEMAS:
        raise SqsError(SqsCode.INVALID_ACTION, f"Action: unknown action {action[:100]!r}")
    return action, tree


def _indexed(node: Any, where: str) -> list[Any]:
    """The members of a flattened list node (``{"1": ..., "2": ...}``) in index order."""
    if not isinstance(node, dict):
        raise _invalid(f"{where}: must be a list (.1, .2, ...)")
    if any(_INDEX_RE.fullmatch(index) is None for index in node):
        raise _invalid(f"{where}: list indexes are 1, 2, ...")
    return [node[index] for index in sorted(node, key=int)]


def _leaf(node: Any, where: str) -> str:
    if not isinstance(node, str):
        raise _invalid(f"{where}: must be a single value")
    return node


def _from_tree(schema: Mapping[str, Field], tree: dict[str, Any], where: str) -> dict[str, Any]:
    """Query protocol tree -> parameters in the JSON shape, by ``schema``."""
    params: dict[str, Any] = {}
    # An empty list or map comes under its JSON name ("AttributeNames="), as botocore sends it.
    names = {name: name for name in schema}
    names.update({field.query: name for name, field in schema.items() if field.query})
    for query_name, node in tree.items():
        if query_name not in names:
            raise _invalid(f"{where}{query_name}: unknown parameter")
        name = names[query_name]
        if name in params:
            raise _malformed(f"{where}{query_name}: given twice")
        field = schema[name]
        here = f"{where}{query_name}"
        if node == "" and field.kind not in (Kind.STR, Kind.INT):
            node = {}  # how botocore sends an empty list or map: "AttributeName="
        if field.kind is Kind.STR:
            params[name] = _leaf(node, here)
        elif field.kind is Kind.INT:
            text = _leaf(node, here)
            if _INT_RE.fullmatch(text) is None:
                raise _invalid(f"{here}: must be an integer")
            params[name] = int(text)
        elif field.kind is Kind.STR_LIST:
            params[name] = [_leaf(item, f"{here}.N") for item in _indexed(node, here)]
        elif field.kind is Kind.ENTRIES:
            assert field.entry is not None
            entries = []
            for item in _indexed(node, here):
                if not isinstance(item, dict):
                    raise _invalid(f"{here}.N: each entry has members (.N.Id, ...)")
                entries.append(_from_tree(field.entry, item, f"{here}.N."))
            params[name] = entries
        else:
            params[name] = _map_from_tree(field, node, here)
    return params


def _map_from_tree(field: Field, node: Any, where: str) -> dict[str, Any]:
    key_name, value_name = field.keys
    result: dict[str, Any] = {}
    for item in _indexed(node, where):
        if not isinstance(item, dict) or set(item) != {key_name, value_name}:
            raise _invalid(f"{where}.N: needs .{key_name} and .{value_name}")
        key = _leaf(item[key_name], f"{where}.N.{key_name}")
        if key in result:
            raise _invalid(f"{where}: {key_name} {key[:100]!r} given twice")
        value = item[value_name]
        if field.kind is Kind.ATTR_MAP:
            if not isinstance(value, dict):
                raise _invalid(f"{where}.N.Value: needs .DataType and a value")
            unknown = set(value) - {"DataType", "StringValue", "BinaryValue"}
            if unknown:
                raise _invalid(f"{where}.N.Value.{sorted(unknown)[0]}: unknown member")
            result[key] = {k: _leaf(v, f"{where}.N.Value.{k}") for k, v in value.items()}
        else:
            result[key] = _leaf(value, f"{where}.N.{value_name}")
    return result


def _from_json(schema: Mapping[str, Field], obj: dict[str, Any], where: str) -> dict[str, Any]:
    """JSON protocol object -> parameters, each value type-checked by ``schema``."""
    params: dict[str, Any] = {}
    for name, value in obj.items():
        here = f"{where}{name}"
        field = schema.get(name)
        if field is None:
            raise _invalid(f"{here}: unknown parameter")
        if value is None:
            continue
        kind = field.kind
        if _is_plain(kind, value):
            params[name] = value
        elif kind is Kind.ATTR_MAP and type(value) is dict:
            params[name] = {key: _json_attribute(item, f"{here}.{key[:100]}")
                            for key, item in value.items()}
        elif kind is Kind.ENTRIES and type(value) is list:
            assert field.entry is not None
            params[name] = [_from_json(field.entry, _entry_object(item, here), f"{here}[].")
                            for item in value]
        else:
            raise _invalid(f"{here}: must be a {kind.value}")
    return params


def _is_plain(kind: Kind, value: Any) -> bool:
    """Whether ``value`` is a JSON value of a kind kept as it is (strings, ints, lists, maps)."""
    if kind is Kind.STR:
        return type(value) is str
    if kind is Kind.INT:
        return type(value) is int
    if kind is Kind.STR_LIST:
        return type(value) is list and all(type(item) is str for item in value)
    if kind is Kind.STR_MAP:
        return type(value) is dict and all(type(item) is str for item in value.values())
    return False


def _entry_object(item: Any, where: str) -> dict[str, Any]:
    if type(item) is not dict:
        raise _invalid(f"{where}: each entry must be an object")
    return item


def _json_attribute(item: Any, where: str) -> dict[str, str]:
    if type(item) is not dict:
        raise _invalid(f"{where}: must be an object with DataType and a value")
    result: dict[str, str] = {}
    for key, value in item.items():
        if key in ("StringListValues", "BinaryListValues") and value in (None, []):
            continue
        if key not in ("DataType", "StringValue", "BinaryValue"):
            raise _invalid(f"{where}.{key[:100]}: unknown or unsupported member")
        if type(value) is not str:
            raise _invalid(f"{where}.{key}: must be a string")
        result[key] = value
    return result


def _check(action: str, params: dict[str, Any], failed: dict[str, SqsError]) -> None:
    """SQS's value rules, the same for both protocols; normalizes BinaryValue to bytes."""
    for name in REQUIRED.get(action, ()):
        if name not in params:
            raise SqsError(SqsCode.MISSING_PARAMETER,
                           f"{name}: the request must contain this parameter")
    _check_values(params, "")
    if action == "SendMessage":
        check_message(params, "")
    elif action in _ENTRY_REQUIRED:
        _check_entries(action, params["Entries"], failed)
    if action == "CreateQueue":
        check_queue_name(params["QueueName"])
    if action in ("CreateQueue", "TagQueue"):
        check_tags(params.get("tags", params.get("Tags", {})))
    if action == "GetQueueAttributes":
        for attribute in params.get("AttributeNames", []):
            if attribute != "All" and attribute not in QUEUE_ATTRIBUTE_NAMES:
                raise SqsError(SqsCode.INVALID_ATTRIBUTE_NAME,
                               f"AttributeNames: unknown attribute {attribute[:100]!r}")
    for name in ("AttributeNames", "MessageSystemAttributeNames"):
        if action == "ReceiveMessage":
            for attribute in params.get(name, []):
                if attribute not in MESSAGE_SYSTEM_ATTRIBUTE_NAMES:
                    raise SqsError(SqsCode.INVALID_ATTRIBUTE_NAME,
                                   f"{name}: unknown attribute {attribute[:100]!r}")
    for name in params.get("MessageAttributeNames", []):
        if name not in ("All", ".*") and ATTRIBUTE_NAME_RE.fullmatch(
                name.removesuffix(".*")) is None:
            raise SqsError(SqsCode.INVALID_ATTRIBUTE_NAME,
                           f"MessageAttributeNames: invalid name {name[:100]!r}")


def _check_values(params: dict[str, Any], where: str) -> None:
    for name, (low, high) in INT_RANGES.items():
        value = params.get(name)
        if value is not None and not low <= value <= high:
            raise _invalid(f"{where}{name}: must be between {low} and {high}, got {value}")
    url = params.get("QueueUrl")
    if url is not None and (not url or len(url) > MAX_URL_CHARS):
        raise _invalid(f"{where}QueueUrl: must be a queue URL")
    handle = params.get("ReceiptHandle")
    if handle is not None and (not handle or len(handle) > MAX_RECEIPT_HANDLE_CHARS):
        raise SqsError(SqsCode.RECEIPT_HANDLE_IS_INVALID,
                       f"{where}ReceiptHandle: the input receipt handle is invalid")
    for name in ("MessageDeduplicationId", "MessageGroupId", "ReceiveRequestAttemptId"):
        value = params.get(name)
        if value is not None and _FIFO_ID_RE.fullmatch(value) is None:
            raise _invalid(f"{where}{name}: 1 to 128 alphanumeric or punctuation characters")
    for name in ("QueueNamePrefix", "NextToken", "SourceArn", "DestinationArn",
                 "TaskHandle", "QueueOwnerAWSAccountId"):
        value = params.get(name)
        if value is not None and len(value) > MAX_URL_CHARS:
            raise _invalid(f"{where}{name}: too long")


def _check_entries(action: str, entries: list[dict[str, Any]],
                   failed: dict[str, SqsError]) -> None:
    """Check a batch: what makes the whole request fail raises; an entry's own fault goes
    into ``failed`` (by entry id) and the entry leaves ``entries``."""
    if not entries:
        raise SqsError(SqsCode.EMPTY_BATCH_REQUEST,
                       "Entries: there should be at least one entry in the request")
    if len(entries) > MAX_BATCH_ENTRIES:
        raise SqsError(SqsCode.TOO_MANY_ENTRIES_IN_BATCH_REQUEST,
                       f"Entries: at most {MAX_BATCH_ENTRIES} entries, got {len(entries)}")
    seen: set[str] = set()
    total_bytes = 0
    for position, entry in enumerate(entries, 1):
        where = f"Entries.{position}."
        for name in _ENTRY_REQUIRED[action]:
            if name not in entry:
                raise SqsError(SqsCode.MISSING_PARAMETER, f"{where}{name}: required")
        entry_id = entry["Id"]
        if _BATCH_ID_RE.fullmatch(entry_id) is None:
            raise SqsError(SqsCode.INVALID_BATCH_ENTRY_ID,
                           f"{where}Id: 1 to 80 alphanumeric characters, '-' or '_'")
        if entry_id in seen:
            raise SqsError(SqsCode.BATCH_ENTRY_IDS_NOT_DISTINCT,
                           f"{where}Id: {entry_id!r} is used by another entry")
        seen.add(entry_id)
        try:
            _check_values(entry, where)
            if action == "SendMessageBatch":
                total_bytes += check_message(entry, where)
        except SqsError as error:  # this entry fails; the others go on, as in SQS
            failed[entry_id] = error
    entries[:] = [entry for entry in entries if entry["Id"] not in failed]
    if total_bytes > MAX_MESSAGE_BYTES:
        raise SqsError(SqsCode.BATCH_REQUEST_TOO_LONG,
                       f"Entries: the messages total {total_bytes} bytes, more than "
                       f"{MAX_MESSAGE_BYTES}")
