"""The SQS API on the Falcon app, over the fake Raft process: what each action commits, the
answers and errors of both protocols, SigV4 keys, roles and protected mode."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any
from urllib.parse import urlencode

import falcon.testing
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.api.errors import ApiError
from dqueue.api.sqs_keys import SqsKeysError, parse_keys, receipt_key
from dqueue.api.sqs_service import sqs_error_of
from dqueue.protocol.errors import ErrorCode
from dqueue.sqs.errors import SqsCode
from dqueue.sqs.names import Receipt, encode_receipt_handle
from dqueue.tokens import add_token
from tests.unit.api.conftest import FakeRaft

HOST = "node1:8080"
URL = f"http://{HOST}/000000000000/jobs"
REMOTE = "10.250.0.7"
KEY_ID = "AKIDUNITTEST00001"
SECRET = "unit-test-secret-0001"
READER = "AKIDUNITREADER001"


def build(config, secure_dir=None, **changes):
    config = dataclasses.replace(config, secure_dir=str(secure_dir or ""), **changes)
    ids = (f"t{i:031d}" for i in itertools.count(1))
    fake = FakeRaft()
    app = create_app(lambda: fake, config, CollectorRegistry(), new_id=lambda: next(ids))
    return falcon.testing.TestClient(app), fake, config


def call(client, action: str, params: dict[str, Any], remote_addr: str = "127.0.0.1",
         headers: dict[str, str] | None = None):
    """A JSON protocol request, as boto3 sends it."""
    return client.simulate_post("/", body=json.dumps(params), remote_addr=remote_addr,
                                headers={"X-Amz-Target": f"AmazonSQS.{action}",
                                         "Content-Type": "application/x-amz-json-1.0",
                                         "Host": HOST, **(headers or {})})


def signed(client, action: str, params: dict[str, Any], key_id: str, secret: str,
           region: str = "us-east-1"):
    """A JSON protocol request signed by botocore's SigV4."""
    body = json.dumps(params)
    request = AWSRequest("POST", f"http://{HOST}/", data=body, headers={
        "X-Amz-Target": f"AmazonSQS.{action}", "Content-Type": "application/x-amz-json-1.0"})
    SigV4Auth(Credentials(key_id, secret), "sqs", region).add_auth(request)
    return client.simulate_post("/", body=body, remote_addr=REMOTE,
                                headers={**dict(request.headers.items()), "Host": HOST})


@pytest.fixture
def app(config):
    client, fake, config = build(config)
    assert call(client, "CreateQueue", {"QueueName": "jobs"}).status_code == 200
    return client, fake, config


def test_create_queue_commits_sqs_settings_and_answers_the_url(app):
    client, fake, _ = app
    [create] = [c for c in fake.commands if c["op"] == "create_queue"]
    assert create["name"] == "jobs"
    assert create["settings"]["backoff_base_ms"] == 0  # visible again at once on expiry
    assert create["settings"]["max_retries"] == 1000  # no redrive: received again and again
    again = call(client, "CreateQueue", {"QueueName": "jobs"})
    assert again.json == {"QueueUrl": URL}
    other = call(client, "CreateQueue", {"QueueName": "jobs",
                                         "Attributes": {"VisibilityTimeout": "5"}})
    assert other.status_code == 400
    assert other.headers["x-amzn-query-error"] == "QueueAlreadyExists;Sender"


def test_fifo_queues_need_the_flag_a_group_and_a_deduplication_id(app):
    client, fake, _ = app
    refused = call(client, "CreateQueue", {"QueueName": "a.fifo"})
    assert refused.status_code == 400 and "FifoQueue" in refused.json["message"]
    made = call(client, "CreateQueue", {"QueueName": "a.fifo",
                                        "Attributes": {"FifoQueue": "true"}})
    assert made.status_code == 200, made.json
    url = made.json["QueueUrl"]
    no_group = call(client, "SendMessage", {"QueueUrl": url, "MessageBody": "x",
                                            "MessageDeduplicationId": "d1"})
    assert no_group.status_code == 400 and "MessageGroupId" in no_group.json["message"]
    no_dedup = call(client, "SendMessage", {"QueueUrl": url, "MessageBody": "x",
                                            "MessageGroupId": "g"})
    assert no_dedup.status_code == 400 and "ContentBasedDeduplication" in no_dedup.json[
        "message"]
    sent = call(client, "SendMessage", {"QueueUrl": url, "MessageBody": "x",
                                        "MessageGroupId": "g", "MessageDeduplicationId": "d1"})
    again = call(client, "SendMessage", {"QueueUrl": url, "MessageBody": "other",
                                         "MessageGroupId": "g", "MessageDeduplicationId": "d1"})
    assert sent.status_code == again.status_code == 200
    assert sent.json["MessageId"] == again.json["MessageId"]  # deduplicated
    task = fake.tasks[sent.json["MessageId"]]
    assert task["group"] == "g" and task["queue"] == "a.fifo"


def test_send_receive_delete_are_one_command_each(app):
    client, fake, _ = app
    sent = call(client, "SendMessage", {"QueueUrl": URL, "MessageBody": "hi",
                                        "DelaySeconds": 3})
    assert sent.status_code == 200, sent.json
    enqueue = fake.commands[-1]
    [task] = enqueue["tasks"]
    assert (task["type"], task["payload"], task["queue"], task["delay_ms"]) == (
        "sqs", "hi", "jobs", 3000)
    fake.clock.advance(3)
    got = call(client, "ReceiveMessage", {"QueueUrl": URL, "WaitTimeSeconds": 2,
                                          "VisibilityTimeout": 0})
    lease = fake.commands[-1]
    assert lease["queues"] == ["jobs"] and lease["worker_id"] == "sqs"
    assert lease["lease_ms"] == 1  # VisibilityTimeout 0: the shortest lease
    assert fake.waits[-1] == 2000
    [message] = got.json["Messages"]
    assert message["Body"] == "hi" and message["MessageId"] == sent.json["MessageId"]
    deleted = call(client, "DeleteMessage", {"QueueUrl": URL,
                                             "ReceiptHandle": message["ReceiptHandle"]})
    assert deleted.status_code == 200
    assert fake.commands[-1]["op"] == "ack"
    # A stale handle (the message is gone) is harmless, as in SQS.
    assert call(client, "DeleteMessage", {"QueueUrl": URL, "ReceiptHandle":
                                          message["ReceiptHandle"]}).status_code == 200


def test_receive_waits_the_queue_wait_when_the_request_gives_none(app):
    client, fake, _ = app
    call(client, "SetQueueAttributes", {"QueueUrl": URL, "Attributes": {
        "ReceiveMessageWaitTimeSeconds": "4"}})
    assert call(client, "ReceiveMessage", {"QueueUrl": URL}).json == {}
    assert fake.waits[-1] == 4000


def test_a_task_of_the_dqueue_api_is_received_with_its_json_as_body(app):
    client, fake, _ = app
    fake.queue.command({"op": "enqueue", "tasks": [
        {"id": "x" * 32, "type": "email", "payload": {"to": "a"}, "queue": "jobs"}]})
    [message] = call(client, "ReceiveMessage", {"QueueUrl": URL}).json["Messages"]
    assert json.loads(message["Body"]) == {"to": "a"}


def test_forged_and_foreign_receipt_handles_are_invalid(app, config):
    client, _, config = app
    forged = call(client, "DeleteMessage", {"QueueUrl": URL, "ReceiptHandle": "Zm9yZ2Vk"})
    assert forged.status_code == 400
    assert forged.json["__type"].endswith("#ReceiptHandleIsInvalid")
    # Genuine, but of another queue.
    handle = encode_receipt_handle(Receipt("other", "t" * 32, "tok"), receipt_key(config, None))
    foreign = call(client, "DeleteMessage", {"QueueUrl": URL, "ReceiptHandle": handle})
    assert foreign.json["__type"].endswith("#ReceiptHandleIsInvalid")


def test_the_query_protocol_posted_to_the_queue_url(app):
    client, fake, _ = app
    body = urlencode({"Action": "SendMessage", "MessageBody": "q", "Version": "2012-11-05"})
    answer = client.simulate_post("/000000000000/jobs", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Host": HOST})
    assert answer.status_code == 200
    assert answer.text.startswith("<?xml") and "<MessageId>" in answer.text
    assert fake.commands[-1]["tasks"][0]["payload"] == "q"


def test_unknown_queue_is_queue_does_not_exist(app):
    client, _, _ = app
    answer = call(client, "SendMessage", {"QueueUrl": URL.replace("jobs", "nope"),
                                          "MessageBody": "x"})
    assert answer.status_code == 400
    assert answer.headers["x-amzn-query-error"] == (
        "AWS.SimpleQueueService.NonExistentQueue;Sender")


def test_protected_mode_serves_loopback_only(config):
    client, _, _ = build(config)
    answer = call(client, "ListQueues", {}, remote_addr=REMOTE)
    assert answer.status_code == 403
    assert answer.json["__type"].endswith("#AccessDenied")
    assert "protected mode" in answer.json["message"]
    assert call(client, "ListQueues", {}).status_code == 200


def write_keys(folder) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / "sqs_keys.toml"
    path.write_text(f'[keys.{KEY_ID}]\nsecret = "{SECRET}"\nroles = ["admin"]\n'
                    f'[keys.{READER}]\nsecret = "{SECRET}"\nroles = ["read"]\n')
    path.chmod(0o600)


def test_with_keys_every_request_is_signed_and_roles_hold(config, tmp_path):
    write_keys(tmp_path / "sec")
    client, _, _ = build(config, tmp_path / "sec")
    assert signed(client, "CreateQueue", {"QueueName": "jobs"}, KEY_ID, SECRET).json == {
        "QueueUrl": URL}
    wrong = signed(client, "ListQueues", {}, KEY_ID, "another-secret-entirely")
    assert wrong.status_code == 403 and wrong.json["__type"].endswith("#SignatureDoesNotMatch")
    region = signed(client, "ListQueues", {}, KEY_ID, SECRET, region="eu-west-1")
    assert region.json["__type"].endswith("#SignatureDoesNotMatch")
    unsigned = call(client, "ListQueues", {})  # loopback, but keys are configured
    assert unsigned.json["__type"].endswith("#MissingAuthenticationToken")
    assert signed(client, "ListQueues", {}, READER, SECRET).status_code == 200
    denied = signed(client, "SendMessage", {"QueueUrl": URL, "MessageBody": "x"}, READER,
                    SECRET)
    assert denied.status_code == 403 and denied.json["__type"].endswith("#AccessDenied")


def test_bearer_routes_are_unchanged_by_the_sqs_routes(config, tmp_path):
    client, _, _ = build(config)
    assert client.simulate_get("/queues", remote_addr=REMOTE).status_code == 403
    assert client.simulate_get("/queues").status_code == 200


def test_api_errors_map_to_sqs_codes():
    def code(api_code: str) -> SqsCode:
        return sqs_error_of(ApiError("400 Bad Request", api_code, "m")).code

    assert code(ErrorCode.QUEUE_NOT_FOUND) is SqsCode.QUEUE_DOES_NOT_EXIST
    assert code(ErrorCode.QUEUE_EXISTS) is SqsCode.QUEUE_NAME_EXISTS
    assert code(ErrorCode.NO_LEADER) is SqsCode.SERVICE_UNAVAILABLE
    assert code(ErrorCode.INVALID_FIELD) is SqsCode.INVALID_PARAMETER_VALUE
    assert code("something_else") is SqsCode.INTERNAL_FAILURE


@pytest.mark.parametrize("text", [
    "not toml [", "[other]\n", '[keys.short]\nsecret = "x"\nroles = ["read"]\n',
    f'[keys.{KEY_ID}]\nsecret = "short"\nroles = ["read"]\n',
    f'[keys.{KEY_ID}]\nsecret = "{SECRET}"\nroles = ["root"]\n',
    f'[keys.{KEY_ID}]\nsecret = "{SECRET}"\nroles = ["read"]\nextra = 1\n',
])
def test_malformed_keys_files_are_refused(text):
    with pytest.raises(SqsKeysError):
        parse_keys(text, "sqs_keys.toml")


def test_the_receipt_key_is_the_same_for_every_member(config):
    one = dataclasses.replace(config, id="n1", peers={"n1": "h:1", "n2": "h:2"})
    two = dataclasses.replace(config, id="n2", peers={"n1": "h:1", "n2": "h:2"})
    keys = parse_keys(f'[keys.{KEY_ID}]\nsecret = "{SECRET}"\nroles = ["read"]\n', "f")
    assert receipt_key(one, keys) == receipt_key(two, keys)
    assert receipt_key(one, keys) != receipt_key(one, None)


def test_the_query_protocol_in_a_get_and_other_methods(app):
    client, _, _ = app
    listed = client.simulate_get("/", query_string="Action=ListQueues&QueueNamePrefix=jo",
                                 headers={"Host": HOST})
    assert listed.status_code == 200 and f"<QueueUrl>{URL}</QueueUrl>" in listed.text
    refused = client.simulate_put("/", headers={"Host": HOST})
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, POST"
    assert "<Code>InvalidAction</Code>" in refused.text
    assert client.simulate_get("/").status_code == 404  # a bare GET is no SQS request
    # Paths beside the queue URLs are the dqueue API's own (404 JSON), not SQS's.
    assert client.simulate_get("/000000000000/jobs/extra").json["error"]["code"]


def test_a_message_larger_than_the_queue_maximum_is_refused(config):
    client, fake, _ = build(config)
    call(client, "CreateQueue", {"QueueName": "jobs",
                                 "Attributes": {"MaximumMessageSize": "1024"}})
    too_big = call(client, "SendMessage", {"QueueUrl": URL, "MessageBody": "x" * 1025})
    assert too_big.status_code == 400 and "MaximumMessageSize" in too_big.json["message"]
    batch = call(client, "SendMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "small", "MessageBody": "x"}, {"Id": "big", "MessageBody": "x" * 1025}]})
    assert [e["Id"] for e in batch.json["Successful"]] == ["small"]
    assert [e["Id"] for e in batch.json["Failed"]] == ["big"]
    assert [t["payload"] for t in fake.commands[-1]["tasks"]] == ["x"]


def test_bearer_tokens_without_sqs_keys_refuse_every_sqs_request(config, tmp_path):
    add_token(str(tmp_path / "sec"), "ci", frozenset({"admin"}))
    client, _, _ = build(config, tmp_path / "sec")
    answer = call(client, "ListQueues", {})  # loopback too, as for the dqueue API
    assert answer.status_code == 403 and "sqs_keys.toml" in answer.json["message"]


def test_insecure_without_keys_serves_every_address(config):
    client, _, _ = build(config, insecure=True)
    assert call(client, "ListQueues", {}, remote_addr=REMOTE).status_code == 200
