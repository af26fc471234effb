"""The parser reads what botocore sends (both protocols) and refuses bad input with SQS errors."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.requests import SCHEMAS, Protocol, SqsRequest, is_sqs_request, parse_request
from tests.depth import examples
from tests.unit.sqs.conftest import build_request, json_model

URL = "http://127.0.0.1:9324/000000000000/jobs"
PROTOCOLS = ["json", "query"]
ATTRS = {"a": {"DataType": "String", "StringValue": "x"},
         "n": {"DataType": "Number.int", "StringValue": "-1.5e3"},
         "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("CreateQueue", {"QueueName": "jobs.fifo", "Attributes": {"FifoQueue": "true"},
                     "tags": {"team": "core"}}),
    ("DeleteQueue", {"QueueUrl": URL}),
    ("GetQueueUrl", {"QueueName": "jobs", "QueueOwnerAWSAccountId": "000000000000"}),
    ("ListQueues", {"QueueNamePrefix": "j", "MaxResults": 5, "NextToken": "t"}),
    ("GetQueueAttributes", {"QueueUrl": URL, "AttributeNames": ["All", "QueueArn"]}),
    ("SetQueueAttributes", {"QueueUrl": URL, "Attributes": {"DelaySeconds": "5"}}),
    ("PurgeQueue", {"QueueUrl": URL}),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "héllo\n", "DelaySeconds": 900,
                     "MessageAttributes": ATTRS, "MessageGroupId": "g-1",
                     "MessageDeduplicationId": "d!1",
                     "MessageSystemAttributes": {"AWSTraceHeader": {
                         "DataType": "String", "StringValue": "Root=1"}}}),
    ("SendMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "e1", "MessageBody": "a", "MessageAttributes": ATTRS},
        {"Id": "e2", "MessageBody": "b", "DelaySeconds": 0}]}),
    ("ReceiveMessage", {"QueueUrl": URL, "AttributeNames": ["All"],
                        "MessageSystemAttributeNames": ["SentTimestamp"],
                        "MessageAttributeNames": ["All", "foo.*"], "MaxNumberOfMessages": 10,
                        "VisibilityTimeout": 43200, "WaitTimeSeconds": 20,
                        "ReceiveRequestAttemptId": "x"}),
    ("DeleteMessage", {"QueueUrl": URL, "ReceiptHandle": "rh"}),
    ("DeleteMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "a", "ReceiptHandle": "r1"}, {"Id": "b", "ReceiptHandle": "r2"}]}),
    ("ChangeMessageVisibility", {"QueueUrl": URL, "ReceiptHandle": "rh",
                                 "VisibilityTimeout": 0}),
    ("ChangeMessageVisibilityBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "a", "ReceiptHandle": "r1", "VisibilityTimeout": 10}]}),
    ("ListDeadLetterSourceQueues", {"QueueUrl": URL, "MaxResults": 10}),
    ("StartMessageMoveTask", {"SourceArn": "arn:aws:sqs:us-east-1:000000000000:dlq",
                              "MaxNumberOfMessagesPerSecond": 50}),
    ("ListMessageMoveTasks", {"SourceArn": "arn:aws:sqs:us-east-1:000000000000:dlq",
                              "MaxResults": 10}),
    ("CancelMessageMoveTask", {"TaskHandle": "h"}),
    ("TagQueue", {"QueueUrl": URL, "Tags": {"a": "1", "b": ""}}),
    ("UntagQueue", {"QueueUrl": URL, "TagKeys": ["a"]}),
    ("ListQueueTags", {"QueueUrl": URL}),
]


def parse(operation: str, params: dict[str, Any], protocol: str = "json") -> dict[str, Any]:
    request = parse_request(*build_request(operation, params, protocol=protocol))
    assert request.action == operation
    assert request.protocol is Protocol(protocol)
    return request.params


def refused(operation: str, params: dict[str, Any], protocol: str = "json") -> SqsError:
    with pytest.raises(SqsError) as caught:
        parse_request(*build_request(operation, params, protocol=protocol))
    return caught.value


def test_every_action_of_the_issue_has_a_schema() -> None:
    issue_actions = set(json_model().operation_names) - {"AddPermission", "RemovePermission"}
    assert set(SCHEMAS) == issue_actions


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("operation", "params"), REQUESTS)
def test_botocore_requests_parse_to_their_parameters(operation: str, params: dict[str, Any],
                                                     protocol: str) -> None:
    assert parse(operation, params, protocol) == params


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_empty_lists_parse_as_empty(protocol: str) -> None:
    params = {"QueueUrl": URL, "AttributeNames": []}
    assert parse("GetQueueAttributes", params, protocol) == params


def test_query_request_posted_to_the_queue_url() -> None:
    body = b"Action=SendMessage&MessageBody=hi&Version=2012-11-05"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Host": "h:1"}
    request = parse_request("POST", "/000000000000/jobs", "", headers, body)
    assert request.params == {"MessageBody": "hi", "QueueUrl": "http://h:1/000000000000/jobs"}


def test_query_get_request() -> None:
    request = parse_request("GET", "/", "Action=ListQueues&QueueNamePrefix=a", {}, b"")
    assert (request.action, request.params) == ("ListQueues", {"QueueNamePrefix": "a"})


def test_recognition() -> None:
    assert is_sqs_request("POST", {"X-Amz-Target": "AmazonSQS.SendMessage"})
    assert is_sqs_request("POST", {"content-type": "application/x-www-form-urlencoded"})
    assert not is_sqs_request("POST", {"Content-Type": "application/json"})
    assert not is_sqs_request("POST", {"X-Amz-Target": "DynamoDB_20120810.GetItem"})


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("operation", "params", "code", "field"), [
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "x", "DelaySeconds": 901},
     SqsCode.INVALID_PARAMETER_VALUE, "DelaySeconds"),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "x" * (1024 * 1024 + 1)},
     SqsCode.INVALID_PARAMETER_VALUE, "MessageBody"),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "bell \x07"},
     SqsCode.INVALID_MESSAGE_CONTENTS, "MessageBody"),
    ("SendMessage", {"QueueUrl": URL}, SqsCode.MISSING_PARAMETER, "MessageBody"),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "x", "MessageAttributes": {
        "AWS.x": {"DataType": "String", "StringValue": "v"}}},
     SqsCode.INVALID_PARAMETER_VALUE, "MessageAttributes.AWS.x"),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "x", "MessageAttributes": {
        "n": {"DataType": "Number", "StringValue": "ten"}}},
     SqsCode.INVALID_PARAMETER_VALUE, "MessageAttributes.n.StringValue"),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "x", "MessageAttributes": {
        "n": {"DataType": "Float", "StringValue": "1"}}},
     SqsCode.INVALID_PARAMETER_VALUE, "MessageAttributes.n.DataType"),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "x", "MessageAttributes": {
        "n": {"DataType": "Binary", "StringValue": "1"}}},
     SqsCode.INVALID_PARAMETER_VALUE, "MessageAttributes.n.StringValue"),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "x", "MessageAttributes": {
        f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}},
     SqsCode.INVALID_PARAMETER_VALUE, "MessageAttributes"),
    ("SendMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": f"e{i}", "MessageBody": "x"} for i in range(11)]},
     SqsCode.TOO_MANY_ENTRIES_IN_BATCH_REQUEST, "Entries"),
    ("SendMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}]},
     SqsCode.BATCH_ENTRY_IDS_NOT_DISTINCT, "Entries.2.Id"),
    ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": "a b", "MessageBody": "x"}]},
     SqsCode.INVALID_BATCH_ENTRY_ID, "Entries.1.Id"),
    ("SendMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": f"e{i}", "MessageBody": "x" * 120_000} for i in range(10)]},
     SqsCode.BATCH_REQUEST_TOO_LONG, "Entries"),
    ("DeleteMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": "a"}]},
     SqsCode.MISSING_PARAMETER, "Entries.1.ReceiptHandle"),
    ("ChangeMessageVisibility", {"QueueUrl": URL, "ReceiptHandle": "r",
                                 "VisibilityTimeout": 43201},
     SqsCode.INVALID_PARAMETER_VALUE, "VisibilityTimeout"),
    ("ReceiveMessage", {"QueueUrl": URL, "MaxNumberOfMessages": 11},
     SqsCode.INVALID_PARAMETER_VALUE, "MaxNumberOfMessages"),
    ("ReceiveMessage", {"QueueUrl": URL, "MaxNumberOfMessages": 0},
     SqsCode.INVALID_PARAMETER_VALUE, "MaxNumberOfMessages"),
    ("ReceiveMessage", {"QueueUrl": URL, "WaitTimeSeconds": 21},
     SqsCode.INVALID_PARAMETER_VALUE, "WaitTimeSeconds"),
    ("ReceiveMessage", {"QueueUrl": URL, "AttributeNames": ["Nope"]},
     SqsCode.INVALID_ATTRIBUTE_NAME, "AttributeNames"),
    ("GetQueueAttributes", {"QueueUrl": URL, "AttributeNames": ["Nope"]},
     SqsCode.INVALID_ATTRIBUTE_NAME, "AttributeNames"),
    ("CreateQueue", {"QueueName": "bad name"}, SqsCode.INVALID_PARAMETER_VALUE, "QueueName"),
    ("CreateQueue", {"QueueName": "q" * 81}, SqsCode.INVALID_PARAMETER_VALUE, "QueueName"),
    ("TagQueue", {"QueueUrl": URL, "Tags": {"aws:x": "1"}},
     SqsCode.INVALID_PARAMETER_VALUE, "Tags"),
])
def test_bad_input_is_refused_naming_the_field(operation: str, params: dict[str, Any],
                                               code: SqsCode, field: str,
                                               protocol: str) -> None:
    error = refused(operation, params, protocol)
    assert error.code is code
    assert error.message.startswith(field), error.message


def test_queue_name_limits() -> None:
    assert parse("CreateQueue", {"QueueName": "q" * 80}) == {"QueueName": "q" * 80}
    assert parse("CreateQueue", {"QueueName": "q" * 75 + ".fifo"})["QueueName"].endswith(".fifo")
    assert refused("CreateQueue", {"QueueName": "q" * 76 + ".fifo"}).code is (
        SqsCode.INVALID_PARAMETER_VALUE)


def test_message_of_exactly_one_mib_is_accepted() -> None:
    params = {"QueueUrl": URL, "MessageBody": "x" * (1024 * 1024)}
    assert parse("SendMessage", params) == params


def json_request(target: str, body: bytes) -> tuple[str, str, str, dict[str, str], bytes]:
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"}
    return "POST", "/", "", headers, body


@pytest.mark.parametrize(("body", "code"), [
    (b"[1]", SqsCode.MALFORMED_REQUEST),
    (b"{", SqsCode.MALFORMED_REQUEST),
    (b"\xff", SqsCode.MALFORMED_REQUEST),
    (b"[" * 100_000, SqsCode.MALFORMED_REQUEST),
    (b'{"QueueUrl": 1}', SqsCode.INVALID_PARAMETER_VALUE),
    (b'{"QueueUrl": "u", "Extra": 1}', SqsCode.INVALID_PARAMETER_VALUE),
    (b'{"QueueUrl": "u", "MaxNumberOfMessages": true}', SqsCode.INVALID_PARAMETER_VALUE),
    (b'{"QueueUrl": "u", "MaxNumberOfMessages": 1.0}', SqsCode.INVALID_PARAMETER_VALUE),
])
def test_malformed_json_bodies(body: bytes, code: SqsCode) -> None:
    with pytest.raises(SqsError) as caught:
        parse_request(*json_request("AmazonSQS.ReceiveMessage", body))
    assert caught.value.code is code


def test_unknown_actions() -> None:
    with pytest.raises(SqsError) as caught:
        parse_request(*json_request("AmazonSQS.AddPermission", b"{}"))
    assert caught.value.code is SqsCode.INVALID_ACTION
    with pytest.raises(SqsError) as caught:
        parse_request("POST", "/", "", {"Content-Type": "application/x-www-form-urlencoded"},
                      b"Action=Nope")
    assert caught.value.code is SqsCode.INVALID_ACTION


@pytest.mark.parametrize("body", [
    b"Action=GetQueueAttributes&QueueUrl=u&AttributeName.0=All",
    b"Action=GetQueueAttributes&QueueUrl=u&AttributeName.1=All&AttributeName.1=All",
    b"Action=GetQueueAttributes&QueueUrl=u&AttributeName=x&AttributeName.1=All",
    b"Action=SetQueueAttributes&QueueUrl=u&Attribute.1.Name=DelaySeconds",
    b"Action=SendMessage&QueueUrl=u&MessageBody=x&DelaySeconds=1e3",
    b"Action=SendMessage&QueueUrl=u&MessageBody=x&Unknown=1",
    b"Action=SendMessage&Action=SendMessage&QueueUrl=u&MessageBody=x",
    b"Action=SendMessage&QueueUrl=u&MessageBody=%FF",
])
def test_malformed_query_bodies(body: bytes) -> None:
    with pytest.raises(SqsError):
        parse_request("POST", "/", "", {"Content-Type": "application/x-www-form-urlencoded"},
                      body)


FORM = "application/x-www-form-urlencoded"


def parse_or_error(method: str, path: str, query: str, headers: dict[str, str],
                   body: bytes) -> SqsRequest | SqsError:
    """The parsed request or the SqsError; any other exception fails the test."""
    try:
        return parse_request(method, path, query, headers, body)
    except SqsError as error:
        return error


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["QueueUrl", "Entries", "Id", "MessageBody", "MessageAttributes",
                         "DataType", "StringValue", "BinaryValue", "ReceiptHandle",
                         "AttributeNames", "Tags", "x"]), children, max_size=4),
    max_leaves=20)


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(sorted(SCHEMAS)), _json_values)
def test_json_parser_raises_only_sqs_errors(action: str, value: Any) -> None:
    outcome = parse_or_error(*json_request(f"AmazonSQS.{action}", json.dumps(value).encode()))
    assert outcome.action == action if isinstance(outcome, SqsRequest) else outcome.message


_query_keys = st.lists(st.sampled_from([
    "QueueUrl", "MessageBody", "Entries", "SendMessageBatchRequestEntry", "Attribute",
    "MessageAttribute", "AttributeName", "1", "2", "Name", "Value", "DataType", "StringValue",
    "BinaryValue", "Id", "Tag", "Key", "0", ""]), min_size=1, max_size=5).map(".".join)


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(sorted(SCHEMAS)),
       st.lists(st.tuples(_query_keys, st.text(max_size=10)), max_size=8))
def test_query_parser_raises_only_sqs_errors(action: str, pairs: list[tuple[str, str]]) -> None:
    body = urlencode([("Action", action), *pairs]).encode()
    outcome = parse_or_error("POST", "/", "", {"Content-Type": FORM}, body)
    assert outcome.action == action if isinstance(outcome, SqsRequest) else outcome.message


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(["GET", "POST", "PUT"]), st.text(max_size=30),
       st.dictionaries(st.sampled_from(["X-Amz-Target", "Content-Type", "Host"]),
                       st.sampled_from(["AmazonSQS.SendMessage", "application/x-amz-json-1.0",
                                        "application/x-www-form-urlencoded", "x"])),
       st.binary(max_size=200))
def test_parser_raises_only_sqs_errors_on_anything(method: str, query: str,
                                                   headers: dict[str, str],
                                                   body: bytes) -> None:
    outcome = parse_or_error(method, "/", query, headers, body)
    assert outcome.action in SCHEMAS if isinstance(outcome, SqsRequest) else outcome.message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_bad_entry_fails_alone(protocol: str) -> None:
    params = {"QueueUrl": URL, "Entries": [
        {"Id": "good", "MessageBody": "a"},
        {"Id": "late", "MessageBody": "b", "DelaySeconds": 901},
        {"Id": "bell", "MessageBody": "\x07"},
        {"Id": "attr", "MessageBody": "c", "MessageAttributes": {
            "n": {"DataType": "Number", "StringValue": "NaN"}}}]}
    request = parse_request(*build_request("SendMessageBatch", params, protocol=protocol))
    assert request.params["Entries"] == [{"Id": "good", "MessageBody": "a"}]
    assert {entry_id: error.code for entry_id, error in request.failed.items()} == {
        "late": SqsCode.INVALID_PARAMETER_VALUE, "bell": SqsCode.INVALID_MESSAGE_CONTENTS,
        "attr": SqsCode.INVALID_PARAMETER_VALUE}
    assert request.failed["late"].message.startswith("Entries.2.DelaySeconds")


def test_a_bad_visibility_entry_fails_alone() -> None:
    params = {"QueueUrl": URL, "Entries": [
        {"Id": "a", "ReceiptHandle": "r", "VisibilityTimeout": 43201},
        {"Id": "b", "ReceiptHandle": "r", "VisibilityTimeout": 5}]}
    request = parse_request(*build_request("ChangeMessageVisibilityBatch", params))
    assert [entry["Id"] for entry in request.params["Entries"]] == ["b"]
    assert list(request.failed) == ["a"]
