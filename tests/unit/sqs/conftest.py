"""botocore, the library boto3 users run, as the other side of the SQS layer's tests.

``build_request`` serializes an operation exactly as boto3 sends it (JSON protocol, the one
SQS's current model speaks) and ``parse_response`` reads an answer as boto3 would. For the
older Query protocol, ``query_model()`` rebuilds the 2012-11-05 Query flavour of SQS's model
from the current one: botocore's JSON model dropped the Query element names
(``locationName``), which the Query serializer and parser need; the names put back here are
SQS's published ones (``Attribute``/``Name``/``Value``, ``SendMessageBatchRequestEntry``, ...).
"""

from __future__ import annotations

import copy
import functools
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

ENDPOINT = "http://127.0.0.1:9324"

_LIST_MEMBER_NAMES = {
    "QueueUrlList": "QueueUrl", "MessageList": "Message",
    "SendMessageBatchResultEntryList": "SendMessageBatchResultEntry",
    "DeleteMessageBatchResultEntryList": "DeleteMessageBatchResultEntry",
    "ChangeMessageVisibilityBatchResultEntryList": "ChangeMessageVisibilityBatchResultEntry",
    "BatchResultErrorEntryList": "BatchResultErrorEntry",
    "ListMessageMoveTasksResultEntryList": "ListMessageMoveTasksResultEntry",
    "AttributeNameList": "AttributeName", "MessageAttributeNameList": "MessageAttributeName",
    "MessageSystemAttributeList": "MessageSystemAttributeName", "TagKeyList": "TagKey",
    "SendMessageBatchRequestEntryList": "SendMessageBatchRequestEntry",
    "DeleteMessageBatchRequestEntryList": "DeleteMessageBatchRequestEntry",
    "ChangeMessageVisibilityBatchRequestEntryList": "ChangeMessageVisibilityBatchRequestEntry",
}
_MAP_MEMBER_NAMES = {
    "Attributes": "Attribute", "MessageAttributes": "MessageAttribute",
    "MessageSystemAttributes": "MessageSystemAttribute", "Tags": "Tag", "tags": "Tag",
}


@functools.cache
def json_model() -> ServiceModel:
    """botocore's SQS model, as installed."""
    session = botocore.session.get_session()
    return session.get_service_model("sqs")


@functools.cache
def query_model() -> ServiceModel:
    """SQS's model in its Query protocol flavour (module docstring)."""
    data = copy.deepcopy(botocore.session.get_session().get_service_data("sqs"))
    data["metadata"]["protocol"] = "query"
    data["metadata"]["protocols"] = ["query"]
    data["metadata"].pop("awsQueryCompatible", None)
    shapes = data["shapes"]
    for name, list_member in _LIST_MEMBER_NAMES.items():
        if name in shapes:
            shapes[name]["member"]["locationName"] = list_member
    for shape in shapes.values():
        if shape["type"] == "map":
            is_tags = shape["key"]["shape"] == "TagKey"
            shape["key"]["locationName"] = "Key" if is_tags else "Name"
            shape["value"]["locationName"] = "Value"
        for member_name, member in shape.get("members", {}).items():
            if member_name in _MAP_MEMBER_NAMES and shapes[member["shape"]]["type"] == "map":
                member["locationName"] = _MAP_MEMBER_NAMES[member_name]
    for name, operation in data["operations"].items():
        if "output" in operation:
            operation["output"]["resultWrapper"] = f"{name}Result"
    return ServiceModel(data, "sqs")


def build_request(operation: str, params: dict[str, Any], *,
                  protocol: str = "json") -> tuple[str, str, str, dict[str, str], bytes]:
    """(method, path, query, headers, body) of ``operation`` as botocore sends it."""
    model = json_model() if protocol == "json" else query_model()
    operation_model = model.operation_model(operation)
    serializer = create_serializer(protocol, include_validation=False)  # tests send bad input
    serialized = serializer.serialize_to_request(params, operation_model)
    body = serialized["body"]
    if isinstance(body, dict):
        body = urlencode(body).encode()
    headers = {key: str(value) for key, value in serialized["headers"].items()}
    headers["Host"] = urlsplit(ENDPOINT).netloc
    return serialized["method"], serialized["url_path"], "", headers, body


def aws_request(operation: str, params: dict[str, Any], *,
                protocol: str = "json") -> AWSRequest:
    """The same request as a botocore ``AWSRequest`` (what ``SigV4Auth`` signs)."""
    method, path, _, headers, body = build_request(operation, params, protocol=protocol)
    headers.pop("Host")
    return AWSRequest(method=method, url=ENDPOINT + path, data=body, headers=headers)


def parse_response(operation: str, status: int, headers: dict[str, str], body: bytes, *,
                   protocol: str = "json") -> dict[str, Any]:
    """What botocore makes of an answer to ``operation`` (boto3's return value or error)."""
    model = json_model() if protocol == "json" else query_model()
    operation_model = model.operation_model(operation)
    response = {"status_code": status, "headers": {k.lower(): v for k, v in headers.items()},
                "body": body}
    return create_parser(protocol).parse(response, operation_model.output_shape)
