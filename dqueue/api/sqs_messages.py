"""SQS message actions: send, receive, delete, change visibility (single and batch).

A message is a dqueue task (docs/sqs.md, "Mapping"): type ``sqs``, its ``queue`` the queue's
name, its payload the body string, or ``{"body": ..., "attributes": {...}}`` when the message
has attributes (a ``BinaryValue`` kept as base64 text, ``AWSTraceHeader`` under
``"trace_header"``). A receive is a ``lease`` with ``worker_id`` ``sqs``; a receipt handle
authenticates (queue, task id, lease token); a delete is an ``ack`` with that token, and a
visibility change an ``extend``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from dqueue.api.errors import ApiError
from dqueue.api.message_size import too_large
from dqueue.api.sqs_service import SqsContext, sqs_error_of
from dqueue.protocol.errors import ErrorCode
from dqueue.queue import fields
from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.md5 import md5_of_attributes, md5_of_body
from dqueue.sqs.messages import sequence_number
from dqueue.sqs.names import (
    Account,
    Receipt,
    decode_receipt_handle,
    encode_receipt_handle,
    is_fifo_name,
)
from dqueue.sqs.requests import SqsRequest
from dqueue.sqs.responses import failed_entry

SQS_TYPE = "sqs"
SQS_WORKER = "sqs"
# The idempotency key of a FIFO message: this prefix, its queue, ":", its deduplication id.
FIFO_KEY_PREFIX = "sqs-fifo:"
# Outcomes of an ack or extend by a handle whose lease is over (deleted, expired, re-leased).
_STALE = frozenset({ErrorCode.NOT_FOUND, ErrorCode.LEASE_CONFLICT, ErrorCode.INVALID_STATE})


# ---------------------------------------------------------------- the task of a message

def task_of(ctx: SqsContext, entry: dict[str, Any], queue: str, task_id: str) -> dict[str, Any]:
    """The enqueue plain form of one message to send (already checked by the parser)."""
    body = entry["MessageBody"]
    attributes = entry.get("MessageAttributes") or {}
    system = entry.get("MessageSystemAttributes") or {}
    payload: Any = body
    if attributes or system:
        payload = {"body": body, "attributes": {
            name: _storable(value) for name, value in attributes.items()}}
        if "AWSTraceHeader" in system:
            payload["trace_header"] = system["AWSTraceHeader"]["StringValue"]
    task: dict[str, Any] = {"id": task_id, "type": SQS_TYPE, "payload": payload, "queue": queue}
    if "DelaySeconds" in entry:
        task["delay_ms"] = entry["DelaySeconds"] * 1000
    return task


def fifo_fields(ctx: SqsContext, name: str, entry: dict[str, Any],
                where: str) -> dict[str, Any]:
    """The group and deduplication key of a message to a FIFO queue (none for another queue).

    The deduplication id (MessageDeduplicationId, or the body's SHA-256 with
    ContentBasedDeduplication) becomes the task's idempotency key, scoped to the queue; a FIFO
    queue deduplicates for five minutes (``fields.FIFO_DEDUP_WINDOW_MS``).
    """
    if not is_fifo_name(name):
        if "MessageDeduplicationId" in entry:
            raise SqsError(SqsCode.INVALID_PARAMETER_VALUE,
                           f"{where}MessageDeduplicationId: only FIFO queues take one")
        return {}
    group = entry.get("MessageGroupId")
    if group is None:
        raise SqsError(SqsCode.MISSING_PARAMETER,
                       f"{where}MessageGroupId: a message to a FIFO queue needs one")
    if entry.get("DelaySeconds"):
        raise SqsError(SqsCode.INVALID_PARAMETER_VALUE,
                       f"{where}DelaySeconds: a FIFO queue takes no per-message delay; set "
                       "the queue's DelaySeconds")
    dedup = entry.get("MessageDeduplicationId")
    if dedup is None:
        if not _queue_settings(ctx, name).get("content_dedup"):
            raise SqsError(SqsCode.INVALID_PARAMETER_VALUE,
                           f"{where}MessageDeduplicationId: the queue should either have "
                           "ContentBasedDeduplication enabled or MessageDeduplicationId "
                           "provided explicitly")
        dedup = hashlib.sha256(entry["MessageBody"].encode("utf-8")).hexdigest()
    return {"group": group, "idempotency_key": f"{FIFO_KEY_PREFIX}{name}:{dedup}"}


def _dedup_id(task: dict[str, Any]) -> str | None:
    key = task.get("idempotency_key")
    if isinstance(key, str) and key.startswith(FIFO_KEY_PREFIX):
        return key[len(FIFO_KEY_PREFIX):].partition(":")[2]  # queue names have no ":"
    return None


def _storable(value: dict[str, Any]) -> dict[str, str]:
    if "BinaryValue" in value:
        return {"DataType": value["DataType"],
                "BinaryValue": base64.b64encode(value["BinaryValue"]).decode("ascii")}
    return {"DataType": value["DataType"], "StringValue": value["StringValue"]}


def _message_parts(task: dict[str, Any]) -> tuple[str, dict[str, Any], str | None]:
    """(body, message attributes with BinaryValue as bytes, trace header) of a task."""
    payload = task.get("payload")
    if task.get("type") == SQS_TYPE and isinstance(payload, dict) and isinstance(
            payload.get("body"), str):
        attributes: dict[str, Any] = {}
        for name, value in (payload.get("attributes") or {}).items():
            if "BinaryValue" in value:
                attributes[name] = {"DataType": value["DataType"],
                                    "BinaryValue": base64.b64decode(value["BinaryValue"])}
            else:
                attributes[name] = dict(value)
        return payload["body"], attributes, payload.get("trace_header")
    if isinstance(payload, str):
        return payload, {}, None
    return json.dumps(payload, separators=(",", ":")), {}, None


def _sent(entry_id: str | None, task_id: str, entry: dict[str, Any],
          seq: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"MessageId": task_id,
                              "MD5OfMessageBody": md5_of_body(entry["MessageBody"])}
    attributes_md5 = md5_of_attributes(entry.get("MessageAttributes") or {})
    if attributes_md5 is not None:
        result["MD5OfMessageAttributes"] = attributes_md5
    if seq is not None:  # FIFO queues only
        result["SequenceNumber"] = sequence_number(seq)
    if entry_id is not None:
        result = {"Id": entry_id, **result}
    return result


# ---------------------------------------------------------------- send

def message_bytes(entry: dict[str, Any]) -> int:
    """A message's size as SQS counts it: the body and each attribute's name, type, value."""
    size = len(entry["MessageBody"].encode("utf-8"))
    for name, value in (entry.get("MessageAttributes") or {}).items():
        data = value.get("BinaryValue")
        if data is None:
            data = value["StringValue"].encode("utf-8")
        size += len(name.encode("utf-8")) + len(value["DataType"].encode("utf-8")) + len(data)
    return size


def _check_size(ctx: SqsContext, name: str, entry: dict[str, Any], where: str) -> int:
    """The message's size, or InvalidParameterValue past the queue's MaximumMessageSize (the
    HTTP API's rule too: dqueue/api/message_size.py)."""
    size = message_bytes(entry)
    limit = int(_queue_settings(ctx, name).get("max_message_bytes") or 0)
    if too_large(size, limit):
        raise SqsError(SqsCode.INVALID_PARAMETER_VALUE,
                       f"{where}MessageBody: the message is {size} bytes, more than the "
                       f"queue's MaximumMessageSize {limit}")
    return size


def send_message(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """SendMessage: one ``enqueue`` of one task."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    size = _check_size(ctx, name, request.params, "")
    fifo = fifo_fields(ctx, name, request.params, "")
    [task_id] = ctx.deps.new_ids(1)
    sent_id, seq = _enqueue_one(ctx, {**task_of(ctx, request.params, name, task_id), **fifo},
                                size)
    return _sent(None, sent_id, request.params, seq)


def _enqueue_one(ctx: SqsContext, task: dict[str, Any], size: int) -> tuple[str, int | None]:
    """Enqueue one task; its id and FIFO seq (None outside FIFO queues), or the original's
    when its FIFO deduplication id was seen (SQS answers a duplicate as if it were sent, with
    the first message's id and sequence number)."""
    try:
        value = ctx.deps.enqueue([task], size)
    except ApiError as exc:
        if exc.code == ErrorCode.IDEMPOTENCY_KEY_REUSED and "group" in task:
            original_id = str(exc.extra.get("task_id"))
            return original_id, _seq_of(ctx.deps.read({"op": "get", "id": original_id}))
        raise
    return str(value["tasks"][0]["id"]), _seq_of(value["tasks"][0])


def _seq_of(task: Any) -> int | None:
    """A FIFO task's seq from its plain form; None for others (or when it is gone)."""
    seq = task.get("seq") if isinstance(task, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def send_message_batch(ctx: SqsContext, request: SqsRequest,
                       account: Account) -> dict[str, Any]:
    """SendMessageBatch: one ``enqueue`` of every good entry; bad entries fail alone."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    failed = [failed_entry(i, e) for i, e in request.failed.items()]
    entries: list[dict[str, Any]] = []
    total = 0
    for entry in request.params["Entries"]:
        try:
            total += _check_size(ctx, name, entry, f"Entries.{entry['Id']}.")
            entries.append(entry)
        except SqsError as exc:  # too big for this queue: this entry fails alone
            failed.append(failed_entry(entry["Id"], exc))
    tasks: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    ids = ctx.deps.new_ids(len(entries)) if entries else []
    for i, entry in enumerate(entries):
        try:
            fifo = fifo_fields(ctx, name, entry, f"Entries.{entry['Id']}.")
        except SqsError as exc:
            failed.append(failed_entry(entry["Id"], exc))
            continue
        tasks.append({**task_of(ctx, entry, name, ids[i]), **fifo})
        kept.append(entry)
    successful: list[dict[str, Any]] = []
    if tasks and not is_fifo_name(name):
        value = ctx.deps.enqueue(tasks, total)
        successful = [_sent(entry["Id"], task["id"], entry)
                      for entry, task in zip(kept, value["tasks"], strict=True)]
    elif tasks:
        # FIFO: one at a time, in order, so that a duplicate answers alone (as in SQS).
        for entry, task in zip(kept, tasks, strict=True):
            sent_id, seq = _enqueue_one(ctx, task, message_bytes(entry))
            successful.append(_sent(entry["Id"], sent_id, entry, seq))
    return {"Successful": successful, "Failed": failed}


# ---------------------------------------------------------------- receive

_SETTINGS_TTL_S = 1.0
_MAX_CACHED_QUEUES = 10_000


def _queue_settings(ctx: SqsContext, name: str) -> dict[str, Any]:
    """The queue's settings, read at most once a second per queue and API process (a change
    of ReceiveMessageWaitTimeSeconds or MaximumMessageSize takes up to a second here)."""
    cache = ctx.settings_cache
    now = time.monotonic()
    hit = cache.get(name)
    if hit is not None and now - hit[0] < _SETTINGS_TTL_S:
        return hit[1]
    queue = ctx.deps.read({"op": "queue", "name": name})
    if queue is None:
        cache.pop(name, None)
        raise SqsError(SqsCode.QUEUE_DOES_NOT_EXIST, "The specified queue does not exist.")
    settings: dict[str, Any] = queue["settings"]
    with ctx.lock:
        if len(cache) >= _MAX_CACHED_QUEUES:
            cache.clear()
        cache[name] = (now, settings)
    return settings


def _wanted(names: list[str], name: str) -> bool:
    for pattern in names:
        if pattern in ("All", ".*", name):
            return True
        if pattern.endswith(".*") and name.startswith(pattern[:-1]):
            return True
    return False


def _message(ctx: SqsContext, task: dict[str, Any], name: str, account: Account,
             request: SqsRequest) -> dict[str, Any]:
    body, attributes, trace = _message_parts(task)
    handle = encode_receipt_handle(Receipt(name, task["id"], task["lease"]["token"]),
                                   ctx.receipt_key)
    message: dict[str, Any] = {"MessageId": task["id"], "ReceiptHandle": handle,
                               "MD5OfBody": md5_of_body(body), "Body": body}
    asked = (request.params.get("AttributeNames") or []) + (
        request.params.get("MessageSystemAttributeNames") or [])
    system = {"SenderId": ctx.account_id,
              "SentTimestamp": str(task.get("created_at_ms") or 0),
              "ApproximateReceiveCount": str(task.get("attempts") or 0),
              "ApproximateFirstReceiveTimestamp": str(task.get("updated_at_ms") or 0)}
    if trace is not None:
        system["AWSTraceHeader"] = trace
    if task.get("source_queue"):
        system["DeadLetterQueueSourceArn"] = account.queue_arn(task["source_queue"])
    if task.get("group") is not None:
        system["MessageGroupId"] = task["group"]
        seq = _seq_of(task)
        if seq is not None:
            system["SequenceNumber"] = sequence_number(seq)
        dedup = _dedup_id(task)
        if dedup is not None:
            system["MessageDeduplicationId"] = dedup
    chosen = {key: value for key, value in system.items() if _wanted(asked, key)}
    if chosen:
        message["Attributes"] = chosen
    names = request.params.get("MessageAttributeNames") or []
    returned = {key: value for key, value in attributes.items() if _wanted(names, key)}
    if returned:
        message["MessageAttributes"] = returned
        message["MD5OfMessageAttributes"] = md5_of_attributes(returned)
    return message


def receive_message(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """ReceiveMessage: a ``lease`` of up to MaxNumberOfMessages tasks of the queue, waiting up
    to WaitTimeSeconds (else the queue's wait) for one, as ``POST /tasks/lease`` does."""
    params = request.params
    name = account.name_from_url(params.get("QueueUrl"))
    deps = ctx.deps
    wait_s = params.get("WaitTimeSeconds")
    wait_ms = (int(_queue_settings(ctx, name).get("wait_ms") or 0) if wait_s is None
               else wait_s * 1000)
    wait_ms = min(wait_ms, deps.config.max_wait_ms)
    visibility = params.get("VisibilityTimeout")
    cmd: dict[str, Any] = {
        "op": "lease", "worker_id": SQS_WORKER, "types": None,
        "max_tasks": params.get("MaxNumberOfMessages", 1), "queues": [name],
        # VisibilityTimeout 0: the shortest lease (1 ms), visible again at once.
        "lease_ms": None if visibility is None else max(visibility * 1000,
                                                         fields.LEASE_MS.low),
    }
    tasks = deps.lease(cmd, wait_ms)
    if not tasks:  # None: too many long polls parked; the client polls again
        return {}
    return {"Messages": [_message(ctx, task, name, account, request) for task in tasks]}


# ---------------------------------------------------------------- delete and visibility

def _receipt(ctx: SqsContext, handle: str, name: str) -> Receipt:
    receipt = decode_receipt_handle(handle, ctx.receipt_key)
    if receipt.queue != name:
        raise SqsError(SqsCode.RECEIPT_HANDLE_IS_INVALID,
                       "ReceiptHandle: the handle is of another queue")
    return receipt


def _holder(receipt: Receipt) -> dict[str, Any]:
    return {"id": receipt.task_id, "worker_id": SQS_WORKER, "token": receipt.lease_token}


def delete_message(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """DeleteMessage: ``ack`` with the handle's lease token; a stale handle is harmless."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    receipt = _receipt(ctx, request.params["ReceiptHandle"], name)
    try:
        ctx.deps.command({"op": "ack", **_holder(receipt)})
    except ApiError as exc:
        if exc.code not in _STALE:
            raise
    return {}


def delete_message_batch(ctx: SqsContext, request: SqsRequest,
                         account: Account) -> dict[str, Any]:
    """DeleteMessageBatch: one ``ack_batch`` of the entries whose handles are genuine."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    failed = [failed_entry(i, e) for i, e in request.failed.items()]
    items: list[tuple[str, Receipt]] = []
    for entry in request.params["Entries"]:
        try:
            items.append((entry["Id"], _receipt(ctx, entry["ReceiptHandle"], name)))
        except SqsError as exc:
            failed.append(failed_entry(entry["Id"], exc))
    successful: list[dict[str, Any]] = []
    if items:
        value = ctx.deps.command({"op": "ack_batch",
                                  "items": [_holder(receipt) for _, receipt in items]})
        for (entry_id, _), outcome in zip(items, value["results"], strict=True):
            if outcome.get("ok") or outcome.get("code") in _STALE:
                successful.append({"Id": entry_id})
            else:
                error = SqsError(SqsCode.INTERNAL_FAILURE, str(outcome.get("message")))
                failed.append(failed_entry(entry_id, error))
    return {"Successful": successful, "Failed": failed}


def _extend(ctx: SqsContext, receipt: Receipt, seconds: int) -> None:
    """Extend the lease to ``seconds`` from now (0: the shortest lease, visible at once)."""
    try:
        ctx.deps.command({"op": "extend", **_holder(receipt),
                          "lease_ms": max(seconds * 1000, fields.LEASE_MS.low)})
    except ApiError as exc:
        if exc.code in _STALE:
            raise SqsError(SqsCode.MESSAGE_NOT_INFLIGHT,
                           "ReceiptHandle: the message is not in flight (deleted, or its "
                           "visibility timeout expired)") from None
        raise sqs_error_of(exc) from None


def change_message_visibility(ctx: SqsContext, request: SqsRequest,
                              account: Account) -> dict[str, Any]:
    """ChangeMessageVisibility: ``extend`` the lease of the handle."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    receipt = _receipt(ctx, request.params["ReceiptHandle"], name)
    _extend(ctx, receipt, request.params["VisibilityTimeout"])
    return {}


def change_message_visibility_batch(ctx: SqsContext, request: SqsRequest,
                                    account: Account) -> dict[str, Any]:
    """ChangeMessageVisibilityBatch: one ``extend`` per entry; each fails alone."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    failed = [failed_entry(i, e) for i, e in request.failed.items()]
    successful: list[dict[str, Any]] = []
    for entry in request.params["Entries"]:
        try:
            receipt = _receipt(ctx, entry["ReceiptHandle"], name)
            _extend(ctx, receipt, entry.get("VisibilityTimeout", 0))
            successful.append({"Id": entry["Id"]})
        except SqsError as exc:
            failed.append(failed_entry(entry["Id"], exc))
    return {"Successful": successful, "Failed": failed}


HANDLERS = {
    "SendMessage": send_message, "SendMessageBatch": send_message_batch,
    "ReceiveMessage": receive_message, "DeleteMessage": delete_message,
    "DeleteMessageBatch": delete_message_batch,
    "ChangeMessageVisibility": change_message_visibility,
    "ChangeMessageVisibilityBatch": change_message_visibility_batch,
}
