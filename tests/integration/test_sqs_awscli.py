"""The SQS API of a real node, driven by the AWS CLI (``aws sqs ... --endpoint-url``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration
AWS = str(Path(sys.executable).with_name("aws"))


def aws(tmp_path: Path, url: str, *args: str) -> Any:
    """``aws sqs ARGS --endpoint-url URL --output json``; its JSON output (None if empty)."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIDDQUEUECLI0001",
           "AWS_SECRET_ACCESS_KEY": "any-secret-in-protected-mode",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials")}
    done = subprocess.run([AWS, "sqs", *args, "--endpoint-url", url, "--output", "json"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_create_send_receive_delete_with_the_aws_cli(tmp_path):
    cluster = NodeCluster(tmp_path, 1, start=True)
    try:
        url = cluster.url(cluster.leader())
        queue = aws(tmp_path, url, "create-queue", "--queue-name", "cli-jobs")["QueueUrl"]
        assert queue.endswith("/000000000000/cli-jobs")
        sent = aws(tmp_path, url, "send-message", "--queue-url", queue,
                   "--message-body", "from the cli")
        got = aws(tmp_path, url, "receive-message", "--queue-url", queue,
                  "--wait-time-seconds", "5", "--attribute-names", "All")
        [message] = got["Messages"]
        assert message["MessageId"] == sent["MessageId"]
        assert message["Body"] == "from the cli"
        assert message["Attributes"]["ApproximateReceiveCount"] == "1"
        aws(tmp_path, url, "delete-message", "--queue-url", queue,
            "--receipt-handle", message["ReceiptHandle"])
        attributes = aws(tmp_path, url, "get-queue-attributes", "--queue-url", queue,
                         "--attribute-names", "All")["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    finally:
        cluster.close()
