"""SQS queue attributes <-> dqueue queue settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dqueue.sqs.attributes import (
    QUEUE_ATTRIBUTE_NAMES,
    parse_attributes,
    render_attributes,
)
from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.names import Account
from tests.unit.sqs.conftest import json_model

ACCOUNT = Account("http://127.0.0.1:9324")
DLQ_ARN = ACCOUNT.queue_arn("dead")


def parse(attributes: dict[str, str], name: str = "jobs", creating: bool = True) -> Any:
    return parse_attributes(attributes, queue_name=name, creating=creating,
                            queue_name_of_arn=ACCOUNT.name_from_arn)


def refused(attributes: dict[str, Any], name: str = "jobs", creating: bool = True) -> SqsError:
    with pytest.raises(SqsError) as caught:
        parse(attributes, name, creating)
    return caught.value


def test_names_are_sqs_names() -> None:
    model_names = set(json_model().shape_for("QueueAttributeName").enum) - {"All"}
    assert model_names == QUEUE_ATTRIBUTE_NAMES


def test_settings_of_every_mapped_attribute() -> None:
    parsed = parse({
        "VisibilityTimeout": "45", "DelaySeconds": "900", "MessageRetentionPeriod": "60",
        "MaximumMessageSize": "1024", "ReceiveMessageWaitTimeSeconds": "20",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5}),
    })
    assert parsed.settings == {
        "lease_ms": 45_000, "delay_ms": 900_000, "retention_ms": 60_000,
        "max_message_bytes": 1024, "wait_ms": 20_000, "dead_letter_queue": "dead",
        "max_retries": 4, "fifo": False,
    }
    assert parsed.passthrough == {}


def test_fifo_attributes() -> None:
    parsed = parse({"FifoQueue": "true", "ContentBasedDeduplication": "true",
                    "DeduplicationScope": "messageGroup"}, "jobs.fifo")
    assert parsed.settings == {"fifo": True, "content_dedup": True}
    assert parsed.passthrough == {"DeduplicationScope": "messageGroup"}


def test_redrive_policy_count_as_string_and_removal() -> None:
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": "1"})
    assert parse({"RedrivePolicy": policy}, creating=False).settings == {
        "dead_letter_queue": "dead", "max_retries": 0}
    assert parse({"RedrivePolicy": ""}, creating=False).settings == {
        "dead_letter_queue": None, "max_retries": None}


def test_passthrough_attributes_are_checked_and_kept() -> None:
    allow = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [DLQ_ARN]})
    parsed = parse({"RedriveAllowPolicy": allow, "Policy": "{}",
                    "SqsManagedSseEnabled": "true", "KmsMasterKeyId": "alias/x",
                    "KmsDataKeyReusePeriodSeconds": "300"})
    assert set(parsed.passthrough) == {"RedriveAllowPolicy", "Policy", "SqsManagedSseEnabled",
                                       "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"}


@pytest.mark.parametrize(("attributes", "name", "creating", "code"), [
    ({"Nope": "1"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_NAME),
    ({"QueueArn": "x"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_NAME),
    ({"FifoQueue": "true"}, "jobs", False, SqsCode.INVALID_ATTRIBUTE_NAME),
    ({"ContentBasedDeduplication": "true"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_NAME),
    ({"DeduplicationScope": "queue"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_NAME),
    ({"FifoQueue": "true"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"FifoQueue": "false"}, "jobs.fifo", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({}, "jobs.fifo", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"VisibilityTimeout": "43201"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"VisibilityTimeout": "-1"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"DelaySeconds": "901"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"MessageRetentionPeriod": "59"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"MaximumMessageSize": "1048577"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"ReceiveMessageWaitTimeSeconds": "21"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"ReceiveMessageWaitTimeSeconds": "1.5"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"VisibilityTimeout": 30}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedrivePolicy": "{"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedrivePolicy": "[]"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 0})},
     "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 1001})},
     "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:"
                                   "999999999999:dead", "maxReceiveCount": 3})},
     "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedrivePolicy": json.dumps({"maxReceiveCount": 3})}, "jobs", True,
     SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 3,
                                   "x": 1})}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue"})}, "jobs", True,
     SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"RedriveAllowPolicy": json.dumps({"redrivePermission": "some"})}, "jobs", True,
     SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"SqsManagedSseEnabled": "yes"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
    ({"Policy": "not json"}, "jobs", True, SqsCode.INVALID_ATTRIBUTE_VALUE),
])
def test_bad_attributes(attributes: dict[str, Any], name: str, creating: bool,
                        code: SqsCode) -> None:
    error = refused(attributes, name, creating)
    assert error.code is code
    assert error.message


def test_render_defaults_and_settings() -> None:
    arn = ACCOUNT.queue_arn("jobs")
    rendered = render_attributes(
        {"lease_ms": 45_000, "dead_letter_queue": "dead", "max_retries": 4},
        {"Policy": "{}"}, queue_name="jobs", queue_arn=arn, dead_letter_arn=DLQ_ARN,
        counts={"ApproximateNumberOfMessages": 7, "CreatedTimestamp": 1700000000},
        names=["All"])
    assert rendered == {
        "QueueArn": arn, "VisibilityTimeout": "45", "DelaySeconds": "0",
        "MessageRetentionPeriod": "345600", "MaximumMessageSize": "1048576",
        "ReceiveMessageWaitTimeSeconds": "0", "Policy": "{}",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5},
                                    separators=(",", ":")),
        "ApproximateNumberOfMessages": "7", "CreatedTimestamp": "1700000000",
    }


def test_render_selected_names_and_none() -> None:
    kwargs: dict[str, Any] = {"queue_name": "j.fifo", "queue_arn": "a", "dead_letter_arn": None,
                              "counts": {}}
    assert render_attributes({}, {}, names=["FifoQueue", "Nope"], **kwargs) == {
        "FifoQueue": "true"}
    assert render_attributes({}, {}, names=None, **kwargs) == {}


def test_parse_render_round_trip() -> None:
    given = {"VisibilityTimeout": "12", "DelaySeconds": "3", "MessageRetentionPeriod": "600",
             "MaximumMessageSize": "2048", "ReceiveMessageWaitTimeSeconds": "5",
             "RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN,
                                          "maxReceiveCount": 2}, separators=(",", ":"))}
    parsed = parse(given)
    rendered = render_attributes(parsed.settings, parsed.passthrough, queue_name="jobs",
                                 queue_arn="a", dead_letter_arn=DLQ_ARN, counts={},
                                 names=list(given))
    assert rendered == given
