"""Render an SQS action's result for the JSON protocol or as Query protocol XML.

A result is a dict in the JSON protocol's shape (``{"QueueUrl": ...}``, ``{"Messages":
[...]}``, ``{"Successful": [...], "Failed": [...]}``), with ``bytes`` for a message attribute's
``BinaryValue`` (rendered base64, as both protocols carry it) and ``bool`` for ``SenderFault``.

The Query protocol's XML is ``<{Action}Response><{Action}Result>...</{Action}Result>
<ResponseMetadata><RequestId>...</RequestId></ResponseMetadata></{Action}Response>``, with lists
flattened (one element per member, named as SQS names it: ``QueueUrl``, ``Message``,
``SendMessageBatchResultEntry``, ``BatchResultErrorEntry``, ...) and maps as repeated
``<Attribute><Name/><Value/></Attribute>`` (``Tag`` with ``Key``/``Value``). The actions of
``NO_RESULT_ACTIONS`` answer without a ``Result`` element, as in SQS.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from dqueue.sqs.errors import (
    JSON_CONTENT_TYPE,
    QUERY_NAMESPACE,
    XML_CONTENT_TYPE,
    Rendered,
    SqsError,
    render_json_error,
    render_query_error,
)
from dqueue.sqs.requests import Protocol

# Actions whose answer has no result; every other one has a Result element, even empty.
NO_RESULT_ACTIONS = frozenset({
    "DeleteQueue", "SetQueueAttributes", "PurgeQueue", "DeleteMessage",
    "ChangeMessageVisibility", "TagQueue", "UntagQueue",
})
# JSON list member -> the Query element of each item ("{action}" is the action's name).
_LIST_ELEMENTS = {
    "QueueUrls": "QueueUrl", "queueUrls": "QueueUrl", "Messages": "Message",
    "Successful": "{action}ResultEntry", "Failed": "BatchResultErrorEntry",
    "Results": "ListMessageMoveTasksResultEntry",
}
# JSON map member -> (Query element of each entry, key element, value element).
_MAP_ELEMENTS = {
    "Attributes": ("Attribute", "Name", "Value"),
    "MessageAttributes": ("MessageAttribute", "Name", "Value"),
    "Tags": ("Tag", "Key", "Value"),
}
# Map members whose values are structures (message attribute values), not strings.
_STRUCTURED_MAPS = frozenset({"MessageAttributes"})


def _json_ready(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def render_json(result: Mapping[str, Any], request_id: str) -> Rendered:
    """Render ``result`` for the JSON protocol (HTTP 200)."""
    body = json.dumps(_json_ready(dict(result)), separators=(",", ":")).encode()
    headers = {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": request_id}
    return Rendered(200, headers, body)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return escape(str(value))


def _element(name: str, value: Any, action: str) -> str:
    """The XML of member ``name`` holding ``value`` (lists flattened, maps as entries)."""
    if value is None:
        return ""
    if isinstance(value, list):
        tag = _LIST_ELEMENTS.get(name, name).format(action=action)
        return "".join(f"<{tag}>{_members(item, action)}</{tag}>" if isinstance(item, dict)
                       else f"<{tag}>{_scalar(item)}</{tag}>" for item in value)
    if isinstance(value, dict):
        if name not in _MAP_ELEMENTS:
            return f"<{name}>{_members(value, action)}</{name}>"
        tag, key_tag, value_tag = _MAP_ELEMENTS[name]
        parts = []
        for key, item in value.items():
            inner = _members(item, action) if name in _STRUCTURED_MAPS else _scalar(item)
            parts.append(f"<{tag}><{key_tag}>{escape(key)}</{key_tag}>"
                         f"<{value_tag}>{inner}</{value_tag}></{tag}>")
        return "".join(parts)
    return f"<{name}>{_scalar(value)}</{name}>"


def _members(fields: Mapping[str, Any], action: str) -> str:
    return "".join(_element(name, value, action) for name, value in fields.items())


def render_query(action: str, result: Mapping[str, Any], request_id: str) -> Rendered:
    """Render ``result`` of ``action`` as Query protocol XML (HTTP 200)."""
    inner = _members(result, action)
    has_result = inner or action not in NO_RESULT_ACTIONS
    result_xml = f"<{action}Result>{inner}</{action}Result>" if has_result else ""
    body = (
        f'<?xml version="1.0"?><{action}Response xmlns="{QUERY_NAMESPACE}">{result_xml}'
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    ).encode()
    headers = {"Content-Type": XML_CONTENT_TYPE, "x-amzn-RequestId": request_id}
    return Rendered(200, headers, body)


def protocol_of(headers: Mapping[str, str]) -> Protocol:
    """The protocol to answer in, from the request headers alone (for a request that failed
    to parse too): JSON when there is an ``X-Amz-Target`` header, Query otherwise."""
    is_json = any(name.lower() == "x-amz-target" for name in headers)
    return Protocol.JSON if is_json else Protocol.QUERY


def render_result(protocol: Protocol, action: str, result: Mapping[str, Any],
                  request_id: str) -> Rendered:
    """Render ``result`` of ``action`` in ``protocol``."""
    if protocol is Protocol.JSON:
        return render_json(result, request_id)
    return render_query(action, result, request_id)


def render_error(protocol: Protocol, error: SqsError, request_id: str) -> Rendered:
    """Render ``error`` in ``protocol``."""
    if protocol is Protocol.JSON:
        return render_json_error(error, request_id)
    return render_query_error(error, request_id)


def failed_entry(entry_id: str, error: SqsError) -> dict[str, Any]:
    """A ``Failed`` member of a batch answer (``BatchResultErrorEntry``) for ``error``."""
    return {"Id": entry_id, "SenderFault": error.is_sender_fault, "Code": error.code.value,
            "Message": error.message}
