"""The checks of one message: content, attributes, size as SQS counts it."""

from __future__ import annotations

from typing import Any

import pytest

from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.messages import MAX_MESSAGE_BYTES, check_message, check_tags


def test_size_counts_body_and_attribute_names_types_values() -> None:
    message: dict[str, Any] = {"MessageBody": "héllo", "MessageAttributes": {
        "ab": {"DataType": "String", "StringValue": "xyz"},
        "b": {"DataType": "Binary", "BinaryValue": "AAEC"}}}
    size = check_message(message, "")
    assert size == len("héllo".encode()) + (2 + 6 + 3) + (1 + 6 + 3)
    assert message["MessageAttributes"]["b"]["BinaryValue"] == b"\x00\x01\x02"


def test_attributes_count_toward_the_limit() -> None:
    message = {"MessageBody": "x" * (MAX_MESSAGE_BYTES - 10), "MessageAttributes": {
        "name": {"DataType": "String", "StringValue": "0123456789"}}}
    with pytest.raises(SqsError) as caught:
        check_message(message, "Entries.2.")
    assert caught.value.code is SqsCode.INVALID_PARAMETER_VALUE
    assert caught.value.message.startswith("Entries.2.MessageBody")


@pytest.mark.parametrize("name", ["a..b", ".a", "a.", "aws.x", "Amazon.y", "a b", "x" * 257])
def test_bad_attribute_names(name: str) -> None:
    message = {"MessageBody": "x", "MessageAttributes": {
        name: {"DataType": "String", "StringValue": "v"}}}
    with pytest.raises(SqsError) as caught:
        check_message(message, "")
    assert caught.value.code is SqsCode.INVALID_PARAMETER_VALUE


@pytest.mark.parametrize("value", [
    {"DataType": "String", "StringValue": ""},
    {"DataType": "String"},
    {"StringValue": "x"},
    {"DataType": "Binary", "BinaryValue": "not base64!"},
    {"DataType": "Number", "StringValue": "1e"},
    {"DataType": "String.", "StringValue": "x"},
])
def test_bad_attribute_values(value: dict[str, Any]) -> None:
    with pytest.raises(SqsError):
        check_message({"MessageBody": "x", "MessageAttributes": {"a": value}}, "")


@pytest.mark.parametrize("body", ["\x00", "\ufffe", "\ud800", "ok\x0b"])
def test_characters_outside_xml_are_invalid_contents(body: str) -> None:
    with pytest.raises(SqsError) as caught:
        check_message({"MessageBody": body}, "")
    assert caught.value.code is SqsCode.INVALID_MESSAGE_CONTENTS


def test_only_the_trace_header_is_a_system_attribute() -> None:
    good = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1"}}
    check_message({"MessageBody": "x", "MessageSystemAttributes": good}, "")
    bad = {"Other": {"DataType": "String", "StringValue": "v"}}
    with pytest.raises(SqsError) as caught:
        check_message({"MessageBody": "x", "MessageSystemAttributes": bad}, "")
    assert caught.value.code is SqsCode.INVALID_ATTRIBUTE_NAME


def test_tags() -> None:
    check_tags({"team": "core", "a:b/c": ""})
    with pytest.raises(SqsError):
        check_tags({f"k{i}": "v" for i in range(51)})
    with pytest.raises(SqsError):
        check_tags({"k": "v" * 257})
