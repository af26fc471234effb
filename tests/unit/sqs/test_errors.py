"""SQS errors render so that botocore reports what boto3 users get from SQS."""

from __future__ import annotations

import pytest

from dqueue.sqs.errors import (
    SPECS,
    SqsCode,
    SqsError,
    render_json_error,
    render_query_error,
)
from tests.unit.sqs.conftest import parse_response


def test_every_code_has_a_spec() -> None:
    assert set(SPECS) == set(SqsCode)


def test_json_error_parses_to_the_legacy_code_and_the_shape_name() -> None:
    error = SqsError(SqsCode.QUEUE_DOES_NOT_EXIST, "The specified queue does not exist.")
    rendered = render_json_error(error, "req-1")
    assert rendered.status == 400
    assert rendered.headers["x-amzn-query-error"] == (
        "AWS.SimpleQueueService.NonExistentQueue;Sender")
    parsed = parse_response("GetQueueUrl", rendered.status, rendered.headers, rendered.body)
    assert parsed["Error"] == {
        "Code": "AWS.SimpleQueueService.NonExistentQueue",
        "QueryErrorCode": "QueueDoesNotExist", "Type": "Sender",
        "Message": "The specified queue does not exist.",
    }
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


@pytest.mark.parametrize("code", list(SqsCode))
def test_query_error_parses_to_the_legacy_code(code: SqsCode) -> None:
    error = SqsError(code, "bad <thing> & more")
    rendered = render_query_error(error, "req-2")
    assert rendered.status == SPECS[code].status
    parsed = parse_response("SendMessage", rendered.status, rendered.headers, rendered.body,
                            protocol="query")
    assert parsed["Error"]["Code"] == SPECS[code].query_code
    assert parsed["Error"]["Message"] == "bad <thing> & more"
    assert parsed["Error"]["Type"] == SPECS[code].fault.value
    assert parsed["ResponseMetadata"]["RequestId"] == "req-2"


@pytest.mark.parametrize("code", list(SqsCode))
def test_json_error_round_trips_every_code(code: SqsCode) -> None:
    rendered = render_json_error(SqsError(code, "m"), "r")
    parsed = parse_response("SendMessage", rendered.status, rendered.headers, rendered.body)
    assert parsed["Error"]["Code"] == SPECS[code].query_code
    assert parsed["Error"]["QueryErrorCode"] == code.value


def test_receiver_faults() -> None:
    assert not SqsError(SqsCode.INTERNAL_FAILURE, "x").is_sender_fault
    assert SqsError(SqsCode.INVALID_PARAMETER_VALUE, "x").is_sender_fault
