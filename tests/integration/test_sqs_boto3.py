"""The SQS API of a real node, driven by boto3 (issue 15): every action, visibility timeouts,
long polls, delays, redrive, purge, SQS's errors, SigV4 keys, and a 3-node cluster through a
follower and across a leader's kill -9."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration
REGION = "us-east-1"
KEY_ID = "AKIDDQUEUETEST0001"
SECRET = "s3cr3t-s3cr3t-s3cr3t-s3cr3t"
READER_ID = "AKIDDQUEUEREADER01"


def client(url: str, key_id: str = KEY_ID, secret: str = SECRET, retries: int = 0) -> Any:
    """A boto3 SQS client of the node at ``url``."""
    return boto3.client(
        "sqs", endpoint_url=url, region_name=REGION, aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": retries + 1, "mode": "standard"},
                      read_timeout=30, connect_timeout=5))


def code_of(exc: botocore.exceptions.ClientError) -> str:
    return exc.response["Error"]["Code"]


@pytest.fixture
def node(tmp_path: Path) -> Any:
    cluster = NodeCluster(tmp_path, 1, start=True)
    try:
        yield client(cluster.url(cluster.leader()))
    finally:
        cluster.close()


def parked(queue_url: str) -> float:
    """The node's long polls parked now (its ``dqueue_raft_requests_parked`` gauge)."""
    endpoint = queue_url.rsplit("/", 2)[0]
    with urllib.request.urlopen(endpoint + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.search(r"^dqueue_raft_requests_parked ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def receive(sqs: Any, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    return sqs.receive_message(QueueUrl=url, **kwargs).get("Messages", [])


def test_queue_actions(node):
    sqs = node
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "45"},
                           tags={"team": "a"})["QueueUrl"]
    assert url.endswith("/000000000000/jobs")
    # Equal attributes again: the same URL; other attributes: QueueAlreadyExists.
    assert sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "45"},
                            tags={"team": "a"})["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "46"})
    assert sqs.get_queue_url(QueueName="jobs")["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="nope")
    for name in ("jobs-b", "jobs-c", "other"):
        sqs.create_queue(QueueName=name)
    listed = sqs.list_queues(QueueNamePrefix="jobs")["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in listed] == ["jobs", "jobs-b", "jobs-c"]
    page = sqs.list_queues(QueueNamePrefix="jobs", MaxResults=2)
    assert len(page["QueueUrls"]) == 2 and page["NextToken"]
    rest = sqs.list_queues(QueueNamePrefix="jobs", MaxResults=2, NextToken=page["NextToken"])
    assert [u.rsplit("/", 1)[1] for u in rest["QueueUrls"]] == ["jobs-c"]
    assert "NextToken" not in rest

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45"
    assert attributes["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:jobs"
    assert attributes["ApproximateNumberOfMessages"] == "0"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "0",
                                                       "ReceiveMessageWaitTimeSeconds": "2"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ReceiveMessageWaitTimeSeconds", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert got == {"ReceiveMessageWaitTimeSeconds": "2",
                   "ApproximateNumberOfMessagesNotVisible": "0"}

    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}

    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message(QueueUrl=url, MessageBody="two")
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "2"
    sqs.purge_queue(QueueUrl=url)
    assert receive(sqs, url, WaitTimeSeconds=0) == []
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="gone")
    # A FIFO queue: each group in order, one message at a time, deduplicated by content.
    fifo = sqs.create_queue(QueueName="jobs.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true",
        "VisibilityTimeout": "30"})["QueueUrl"]
    for body, group in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("a1", "a")):
        sqs.send_message(QueueUrl=fifo, MessageBody=body, MessageGroupId=group)
    first = receive(sqs, fifo, WaitTimeSeconds=0, MaxNumberOfMessages=10,
                    AttributeNames=["All"])
    assert sorted(m["Body"] for m in first) == ["a1", "b1"]  # heads only; a1 sent once
    assert {m["Attributes"]["MessageGroupId"] for m in first} == {"a", "b"}
    assert receive(sqs, fifo, WaitTimeSeconds=0, MaxNumberOfMessages=10) == []
    head_a = next(m for m in first if m["Body"] == "a1")
    sqs.delete_message(QueueUrl=fifo, ReceiptHandle=head_a["ReceiptHandle"])
    assert [m["Body"] for m in receive(sqs, fifo, WaitTimeSeconds=0,
                                       MaxNumberOfMessages=10)] == ["a2"]



def test_fifo_sequence_numbers_increase_and_come_back_on_receive(node):
    sqs = node
    fifo = sqs.create_queue(QueueName="seq.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    sent = [sqs.send_message(QueueUrl=fifo, MessageBody="a1", MessageGroupId="a")]
    batch = sqs.send_message_batch(QueueUrl=fifo, Entries=[
        {"Id": "x", "MessageBody": "a2", "MessageGroupId": "a"},
        {"Id": "y", "MessageBody": "b1", "MessageGroupId": "b"}])
    assert batch.get("Failed", []) == []
    sent += sorted(batch["Successful"], key=lambda entry: entry["Id"])
    numbers = [entry["SequenceNumber"] for entry in sent]
    # Large decimal numbers, increasing in the order of the sends (so within each group).
    assert all(n.isdigit() and len(n) == 20 for n in numbers)
    assert [int(n) for n in numbers] == sorted({int(n) for n in numbers})
    again = sqs.send_message(QueueUrl=fifo, MessageBody="a1", MessageGroupId="a")
    assert (again["MessageId"], again["SequenceNumber"]) == (sent[0]["MessageId"], numbers[0])
    got = receive(sqs, fifo, WaitTimeSeconds=0, MaxNumberOfMessages=10,
                  AttributeNames=["SequenceNumber"])
    assert {m["MessageId"]: m["Attributes"]["SequenceNumber"] for m in got} == {
        sent[0]["MessageId"]: numbers[0], sent[2]["MessageId"]: numbers[2]}
    standard = sqs.create_queue(QueueName="plain")["QueueUrl"]
    assert "SequenceNumber" not in sqs.send_message(QueueUrl=standard, MessageBody="m")


def test_messages_visibility_long_poll_and_delays(node):
    sqs = node
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="héllo <x>", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "greeting"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        "n": {"DataType": "Number", "StringValue": "42"}})
    [message] = receive(sqs, url, MessageAttributeNames=["All"], AttributeNames=["All"],
                        VisibilityTimeout=1)
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "héllo <x>"
    assert message["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"
    assert message["MessageAttributes"]["kind"]["StringValue"] == "greeting"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    # Invisible while leased; visible again (received a second time) once the timeout expires.
    assert receive(sqs, url, WaitTimeSeconds=0) == []
    again = wait_for(lambda: receive(sqs, url, WaitTimeSeconds=1, AttributeNames=["All"],
                                     VisibilityTimeout=30), 15, "the message back after 1 s")
    assert again[0]["MessageId"] == sent["MessageId"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    # The first receipt handle is stale: deleting with it is harmless; the new one deletes.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"],
                                  VisibilityTimeout=60)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])
    with pytest.raises(botocore.exceptions.ClientError) as stale:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"],
                                      VisibilityTimeout=5)
    assert code_of(stale.value) == "AWS.SimpleQueueService.MessageNotInflight"

    # ChangeMessageVisibility 0: visible again at once.
    sqs.send_message(QueueUrl=url, MessageBody="zero")
    [leased] = receive(sqs, url, VisibilityTimeout=60)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=leased["ReceiptHandle"],
                                  VisibilityTimeout=0)
    [back] = wait_for(lambda: receive(sqs, url, WaitTimeSeconds=1), 10, "visible at once")
    assert back["Body"] == "zero"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=back["ReceiptHandle"])

    # A long poll is answered as soon as a message arrives, well before its 20 s.
    answered: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        answered["messages"] = receive(client(url.rsplit("/", 2)[0]), url, WaitTimeSeconds=20)
        answered["after_s"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    wait_for(lambda: parked(url) >= 1, 15, "the long poll parked in the Raft process")
    sqs.send_message(QueueUrl=url, MessageBody="wake")
    poller.join(30)
    assert [m["Body"] for m in answered["messages"]] == ["wake"]
    assert answered["after_s"] < 10
    sqs.delete_message(QueueUrl=url, ReceiptHandle=answered["messages"][0]["ReceiptHandle"])

    # A delayed message is invisible until its delay passes.
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    started = time.monotonic()
    assert receive(sqs, url, WaitTimeSeconds=0) == []
    [late] = wait_for(lambda: receive(sqs, url, WaitTimeSeconds=1), 15, "the delayed message")
    assert late["Body"] == "later" and time.monotonic() - started >= 1.5

    # Batches: send, receive, change visibility, delete.
    result = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": f"m{i}", "MessageBody": f"b{i}"} for i in range(10)])
    assert len(result["Successful"]) == 10 and not result.get("Failed")
    got: list[dict[str, Any]] = []
    wait_for(lambda: got.extend(receive(sqs, url, MaxNumberOfMessages=10)) or len(got) >= 10,
             15, "ten messages")
    assert sorted(m["Body"] for m in got) == sorted(f"b{i}" for i in range(10))
    changed = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": f"c{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 60}
        for i, m in enumerate(got)])
    assert len(changed["Successful"]) == 10
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert len(deleted["Successful"]) == 10 and not deleted.get("Failed")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=late["ReceiptHandle"])
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "0"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_redrive_policy_and_message_moves(node):
    sqs = node
    dlq_url = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName="src", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    assert json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])[
        "Attributes"]["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    # Received twice (maxReceiveCount), never deleted: then it moves to the dead-letter queue.
    for count in (1, 2):
        [m] = wait_for(lambda: receive(sqs, url, WaitTimeSeconds=1, VisibilityTimeout=1,
                                       AttributeNames=["ApproximateReceiveCount"]),
                       15, f"receive {count}")
        assert m["Attributes"]["ApproximateReceiveCount"] == str(count)
    [dead] = wait_for(lambda: receive(sqs, dlq_url, WaitTimeSeconds=1, VisibilityTimeout=1,
                                      AttributeNames=["All"]), 15, "the message in the DLQ")
    assert dead["Body"] == "poison"
    assert dead["Attributes"]["DeadLetterQueueSourceArn"].endswith(":src")
    assert receive(sqs, url, WaitTimeSeconds=0) == []
    # StartMessageMoveTask moves it back to its source queue (synchronously).
    wait_for(lambda: sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "1",
        15, "the DLQ message visible again")
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert task["Status"] == "COMPLETED" and task["ApproximateNumberOfMessagesMoved"] == 1
    with pytest.raises(sqs.exceptions.ResourceNotFoundException):
        sqs.cancel_message_move_task(TaskHandle=handle)
    [moved] = wait_for(lambda: receive(sqs, url, WaitTimeSeconds=1), 15, "moved back")
    assert moved["Body"] == "poison"


def test_errors_for_bad_input(node):
    sqs = node
    url = sqs.create_queue(QueueName="errs")["QueueUrl"]
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.receive_message(QueueUrl=url.replace("errs", "missing"))
    with pytest.raises(botocore.exceptions.ClientError) as bad:
        sqs.create_queue(QueueName="bad name!")
    assert code_of(bad.value) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as bad_attr:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "99999"})
    assert code_of(bad_attr.value) == "InvalidAttributeValue"
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="Zm9yZ2VkIGhhbmRsZQ")
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "1"}, {"Id": "a", "MessageBody": "2"}])
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": f"e{i}", "MessageBody": "x"} for i in range(11)])
    # An entry with a bad delay fails alone; the others are sent.
    mixed = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "fine"},
        {"Id": "late", "MessageBody": "x", "DelaySeconds": 901}])
    assert [e["Id"] for e in mixed["Successful"]] == ["ok"]
    assert [(e["Id"], e["SenderFault"]) for e in mixed["Failed"]] == [("late", True)]
    # A receipt handle of one queue is refused on another.
    other = sqs.create_queue(QueueName="errs-2")["QueueUrl"]
    [m] = receive(sqs, url, WaitTimeSeconds=1)
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=other, ReceiptHandle=m["ReceiptHandle"])


def write_keys(cluster: NodeCluster) -> None:
    """The same access keys in every member's secure folder (before it starts)."""
    text = (f'[keys.{KEY_ID}]\nsecret = "{SECRET}"\nroles = ["admin"]\n'
            f'[keys.{READER_ID}]\nsecret = "{SECRET}"\nroles = ["read"]\n')
    for node_id in cluster.ids:
        folder = cluster.secure_dir(node_id)
        assert folder is not None
        path = folder / "sqs_keys.toml"
        path.write_text(text)
        path.chmod(0o600)


def test_signatures_are_checked_with_access_keys(tmp_path):
    cluster = NodeCluster(tmp_path, 1, secure=True)
    write_keys(cluster)
    try:
        cluster.start()
        url = cluster.url(cluster.leader())
        sqs = client(url)
        queue = sqs.create_queue(QueueName="signed")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="ok")
        with pytest.raises(botocore.exceptions.ClientError) as wrong:
            client(url, secret="not-the-secret-at-all").send_message(
                QueueUrl=queue, MessageBody="x")
        assert code_of(wrong.value) == "SignatureDoesNotMatch"
        with pytest.raises(botocore.exceptions.ClientError) as unknown:
            client(url, key_id="AKIDUNKNOWNKEY0001").list_queues()
        assert code_of(unknown.value) == "InvalidClientTokenId"
        reader = client(url, key_id=READER_ID)
        assert reader.list_queues()["QueueUrls"]
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            reader.send_message(QueueUrl=queue, MessageBody="x")
        assert code_of(denied.value) == "AccessDenied"
    finally:
        cluster.close()


def test_three_nodes_follower_and_leader_kill_loses_no_message(tmp_path):
    cluster = NodeCluster(tmp_path, 3, start=True)
    try:
        leader = cluster.leader()
        follower = next(n for n in cluster.ids if n != leader)
        other = next(n for n in cluster.ids if n not in (leader, follower))
        via_follower = client(cluster.url(follower), retries=8)
        url = via_follower.create_queue(QueueName="ha")["QueueUrl"]
        # A handle from the follower works through the other node (one receipt key).
        via_follower.send_message(QueueUrl=url, MessageBody="first")
        [m] = wait_for(lambda: receive(via_follower, url, WaitTimeSeconds=1), 15, "first")
        client(cluster.url(other)).delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

        # Send through the follower while the leader is killed; every acknowledged send is
        # received afterwards (SDK retries may add duplicates, never losses).
        acked: list[str] = []
        stop = threading.Event()

        def send() -> None:
            sender = client(cluster.url(follower), retries=10)
            i = 0
            while not stop.is_set():
                try:
                    sender.send_message(QueueUrl=url, MessageBody=f"m{i}")
                    acked.append(f"m{i}")
                except botocore.exceptions.ClientError:
                    pass  # refused while there is no leader: not acknowledged, may be lost
                i += 1

        sender = threading.Thread(target=send)
        sender.start()
        wait_for(lambda: len(acked) >= 20, 30, "sends before the kill")
        cluster.kill(leader)
        cluster.leader(among=[follower, other], deadline_s=60)
        count = len(acked)
        wait_for(lambda: len(acked) >= count + 20, 60, "sends after the kill")
        stop.set()
        sender.join(60)
        reader = client(cluster.url(other), retries=8)
        seen: set[str] = set()

        def drain() -> bool:
            for message in receive(reader, url, MaxNumberOfMessages=10, WaitTimeSeconds=1):
                seen.add(message["Body"])
                reader.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return set(acked) <= seen

        wait_for(drain, 120, "every acknowledged message received")
    finally:
        cluster.close()
