"""A real boto3 client against the SQS layer, with no network: botocore's ``before-send`` event
hands each signed request to the layer (verify, parse) and returns the layer's rendered answer.

This checks the pieces together as a boto3 user meets them: the signature boto3 computes, the
request it sends, the values it returns and the modeled exceptions it raises.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse

from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.md5 import md5_of_attributes, md5_of_body
from dqueue.sqs.names import Account, Receipt, decode_receipt_handle, encode_receipt_handle
from dqueue.sqs.requests import SqsRequest, parse_request
from dqueue.sqs.responses import protocol_of, render_error, render_result
from dqueue.sqs.sigv4 import verify

ENDPOINT = "http://127.0.0.1:9324"
ACCOUNT = Account(ENDPOINT)
KEYS = {"AKIDTEST": "secret-test"}
HANDLE_KEY = b"h" * 32


class _Raw:
    """The minimal raw response object botocore reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def serve(answer: Callable[[SqsRequest], dict[str, Any]]) -> Callable[..., AWSResponse]:
    """A before-send handler answering with ``answer(request)`` or the layer's error."""

    def handler(request: AWSRequest, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        # A prepared request's header values are bytes, as they go on the wire.
        headers = {name: value.decode() if isinstance(value, bytes) else value
                   for name, value in request.headers.items()}
        headers["Host"] = parts.netloc
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        protocol = protocol_of(headers)
        try:
            verify(request.method, parts.path, parts.query, headers, body,
                   secret_for=KEYS.get, now_ms=_now_ms(headers))
            parsed = parse_request(request.method, parts.path, parts.query, headers, body)
            rendered = render_result(protocol, parsed.action, answer(parsed), "req-1")
        except SqsError as error:
            rendered = render_error(protocol, error, "req-1")
        return AWSResponse(request.url, rendered.status, rendered.headers, _Raw(rendered.body))

    return handler


def _now_ms(headers: dict[str, str]) -> int:
    """The time the request was signed at: the server's clock agrees with the client's."""
    stamp = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def client(answer: Callable[[SqsRequest], dict[str, Any]], secret: str = "secret-test") -> Any:
    sqs = boto3.session.Session().client(
        "sqs", endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id="AKIDTEST", aws_secret_access_key=secret)
    sqs.meta.events.register("before-send.sqs", serve(answer))
    return sqs


def test_send_message() -> None:
    seen: list[SqsRequest] = []

    def answer(request: SqsRequest) -> dict[str, Any]:
        seen.append(request)
        params = request.params
        return {"MessageId": "t-1", "MD5OfMessageBody": md5_of_body(params["MessageBody"]),
                "MD5OfMessageAttributes": md5_of_attributes(params["MessageAttributes"])}

    attributes = {"kind": {"DataType": "String", "StringValue": "email"},
                  "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}}
    result = client(answer).send_message(QueueUrl=ACCOUNT.queue_url("jobs"),
                                         MessageBody="hello", DelaySeconds=3,
                                         MessageAttributes=attributes)
    assert result["MessageId"] == "t-1"
    assert result["MD5OfMessageBody"] == md5_of_body("hello")
    assert ACCOUNT.name_from_url(seen[0].params["QueueUrl"]) == "jobs"
    assert seen[0].params["DelaySeconds"] == 3
    assert seen[0].params["MessageAttributes"]["blob"]["BinaryValue"] == b"\x01\x02"


def test_receive_then_delete() -> None:
    handle = encode_receipt_handle(Receipt("jobs", "t-1", "lease-1"), HANDLE_KEY)
    deleted: list[Receipt] = []

    def answer(request: SqsRequest) -> dict[str, Any]:
        if request.action == "ReceiveMessage":
            attrs = {"n": {"DataType": "Number", "StringValue": "7"}}
            return {"Messages": [{
                "MessageId": "t-1", "ReceiptHandle": handle, "Body": "hi",
                "MD5OfBody": md5_of_body("hi"), "Attributes": {"ApproximateReceiveCount": "1"},
                "MessageAttributes": attrs, "MD5OfMessageAttributes": md5_of_attributes(attrs)}]}
        deleted.append(decode_receipt_handle(request.params["ReceiptHandle"], HANDLE_KEY))
        return {}

    sqs = client(answer)
    messages = sqs.receive_message(QueueUrl=ACCOUNT.queue_url("jobs"), MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1, MessageAttributeNames=["All"],
                                   MessageSystemAttributeNames=["All"])["Messages"]
    assert messages[0]["Body"] == "hi"
    assert messages[0]["MessageAttributes"]["n"] == {"DataType": "Number", "StringValue": "7"}
    sqs.delete_message(QueueUrl=ACCOUNT.queue_url("jobs"),
                       ReceiptHandle=messages[0]["ReceiptHandle"])
    assert deleted == [Receipt("jobs", "t-1", "lease-1")]


def test_modeled_exception_of_a_missing_queue() -> None:
    def answer(request: SqsRequest) -> dict[str, Any]:
        raise SqsError(SqsCode.QUEUE_DOES_NOT_EXIST, "The specified queue does not exist.")

    sqs = client(answer)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.get_queue_url(QueueName="nope")
    assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_batch_errors_reach_the_user() -> None:
    def answer(request: SqsRequest) -> dict[str, Any]:
        raise AssertionError("a refused request reached the queue")

    sqs = client(answer)
    entries = [{"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}]
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(QueueUrl=ACCOUNT.queue_url("jobs"), Entries=entries)


def test_wrong_secret_is_refused_with_sqs_error() -> None:
    sqs = client(lambda request: {}, secret="not-the-secret")
    with pytest.raises(sqs.exceptions.ClientError) as caught:
        sqs.list_queues()
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
