"""Results rendered for both protocols parse, with botocore, to what boto3 users get."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.requests import Protocol, parse_request
from dqueue.sqs.responses import (
    failed_entry,
    protocol_of,
    render_error,
    render_json,
    render_query,
    render_result,
)
from tests.unit.sqs.conftest import build_request, parse_response

URL = "http://127.0.0.1:9324/000000000000/jobs"
RESULTS: list[tuple[str, dict[str, Any]]] = [
    ("CreateQueue", {"QueueUrl": URL}),
    ("GetQueueUrl", {"QueueUrl": URL}),
    ("ListQueues", {"QueueUrls": [URL, URL + "2"], "NextToken": "t1"}),
    ("ListQueues", {}),
    ("GetQueueAttributes", {"Attributes": {"VisibilityTimeout": "30", "DelaySeconds": "0"}}),
    ("SendMessage", {"MD5OfMessageBody": "a" * 32, "MD5OfMessageAttributes": "b" * 32,
                     "MessageId": "m-1", "SequenceNumber": "1"}),
    ("SendMessageBatch", {
        "Successful": [{"Id": "e1", "MessageId": "m-1", "MD5OfMessageBody": "c" * 32}],
        "Failed": [{"Id": "e2", "SenderFault": True, "Code": "InvalidParameterValue",
                    "Message": "DelaySeconds: must be between 0 and 900"}]}),
    ("ReceiveMessage", {"Messages": [
        {"MessageId": "m-1", "ReceiptHandle": "rh1", "MD5OfBody": "d" * 32,
         "Body": "<hello> & 'world'",
         "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
         "MD5OfMessageAttributes": "e" * 32,
         "MessageAttributes": {
             "s": {"StringValue": "x", "DataType": "String"},
             "b": {"BinaryValue": b"\x00\xff", "DataType": "Binary"}}},
        {"MessageId": "m-2", "ReceiptHandle": "rh2", "MD5OfBody": "f" * 32, "Body": "2"}]}),
    ("ReceiveMessage", {}),
    ("DeleteMessageBatch", {"Successful": [{"Id": "a"}, {"Id": "b"}], "Failed": []}),
    ("ChangeMessageVisibilityBatch", {"Successful": [], "Failed": [
        {"Id": "a", "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": "x"}]}),
    ("ListQueueTags", {"Tags": {"team": "core", "env": "test"}}),
    ("ListDeadLetterSourceQueues", {"queueUrls": [URL]}),
    ("StartMessageMoveTask", {"TaskHandle": "h1"}),
    ("CancelMessageMoveTask", {"ApproximateNumberOfMessagesMoved": 3}),
    ("ListMessageMoveTasks", {"Results": [
        {"TaskHandle": "h1", "Status": "RUNNING", "SourceArn": "arn:aws:sqs:x",
         "ApproximateNumberOfMessagesMoved": 2, "StartedTimestamp": 1700000000000}]}),
    ("DeleteMessage", {}),
    ("PurgeQueue", {}),
]


def _without_metadata(parsed: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in parsed.items() if key != "ResponseMetadata"}


def _expected(result: dict[str, Any]) -> dict[str, Any]:
    # botocore leaves empty flattened lists out of a Query answer; JSON keeps them.
    return {key: value for key, value in result.items() if value != []}


@pytest.mark.parametrize(("action", "result"), RESULTS)
def test_json_result_parses_back(action: str, result: dict[str, Any]) -> None:
    rendered = render_json(result, "req-9")
    assert rendered.status == 200
    parsed = parse_response(action, 200, rendered.headers, rendered.body)
    assert _without_metadata(parsed) == result
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"


@pytest.mark.parametrize(("action", "result"), RESULTS)
def test_query_result_parses_back(action: str, result: dict[str, Any]) -> None:
    rendered = render_query(action, result, "req-8")
    assert rendered.headers["Content-Type"] == "text/xml"
    parsed = parse_response(action, 200, rendered.headers, rendered.body, protocol="query")
    assert _without_metadata(parsed) == _expected(result)
    assert parsed["ResponseMetadata"]["RequestId"] == "req-8"


def test_query_empty_result_has_no_result_element() -> None:
    body = render_query("DeleteQueue", {}, "r").body.decode()
    assert "<DeleteQueueResult>" not in body
    assert "<DeleteQueueResponse" in body


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_answer_in_the_protocol_of_the_request(protocol: str) -> None:
    request = build_request("GetQueueUrl", {"QueueName": "jobs"}, protocol=protocol)
    answer_protocol = protocol_of(request[3])
    assert answer_protocol is Protocol(protocol)
    assert parse_request(*request).protocol is answer_protocol
    rendered = render_result(answer_protocol, "GetQueueUrl", {"QueueUrl": URL}, "r")
    parsed = parse_response("GetQueueUrl", rendered.status, rendered.headers, rendered.body,
                            protocol=protocol)
    assert parsed["QueueUrl"] == URL
    error = SqsError(SqsCode.QUEUE_DOES_NOT_EXIST, "The specified queue does not exist.")
    rendered = render_error(answer_protocol, error, "r")
    parsed = parse_response("GetQueueUrl", rendered.status, rendered.headers, rendered.body,
                            protocol=protocol)
    assert parsed["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_failed_entries_parse_as_batch_errors(protocol: str) -> None:
    error = SqsError(SqsCode.INVALID_PARAMETER_VALUE, "Entries.2.DelaySeconds: too big")
    result = {"Successful": [{"Id": "a", "MessageId": "m", "MD5OfMessageBody": "0" * 32}],
              "Failed": [failed_entry("b", error)]}
    rendered = render_result(Protocol(protocol), "SendMessageBatch", result, "r")
    parsed = parse_response("SendMessageBatch", 200, rendered.headers, rendered.body,
                            protocol=protocol)
    assert parsed["Failed"] == [{"Id": "b", "SenderFault": True,
                                 "Code": "InvalidParameterValue",
                                 "Message": "Entries.2.DelaySeconds: too big"}]
