"""SQS queue actions: create, delete, find, list, attributes, purge, tags, dead letters, moves.

Each handler takes the shared ``SqsContext``, the parsed request and the caller's ``Account``
and returns the result in the JSON protocol's shape; it runs dqueue's queue commands and reads
(``dqueue/queue/queues.py``, docs/queues.md). A queue whose name ends in ``.fifo`` is a FIFO
queue (``dqueue/queue/fifo.py``); its messages carry a group and a deduplication id
(``sqs_messages.fifo_fields``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from dqueue.api.sqs_service import SqsContext
from dqueue.queue import fields
from dqueue.sqs.attributes import parse_attributes, render_attributes
from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.names import Account
from dqueue.sqs.requests import SqsRequest

# A queue made over SQS: an expired visibility timeout makes the message visible again at
# once, and without a RedrivePolicy a message is received again and again, as in SQS.
SQS_QUEUE_DEFAULTS: dict[str, Any] = {"backoff_base_ms": 0,
                                      "max_retries": fields.MAX_RETRIES.high}
# The FIFO flag follows the queue's name in the core (attributes.py checks they agree).
_NAME_SETTINGS = ("fifo",)
DEFAULT_LIST_RESULTS = 1000


def queue_of(ctx: SqsContext, name: str) -> dict[str, Any]:
    """The queue read of ``name`` (settings, counts), or QueueDoesNotExist."""
    queue = ctx.deps.read({"op": "queue", "name": name})
    if queue is None:
        raise SqsError(SqsCode.QUEUE_DOES_NOT_EXIST, "The specified queue does not exist.")
    return queue


def _settings(attributes: dict[str, str], name: str, account: Account,
              creating: bool) -> dict[str, Any]:
    parsed = parse_attributes(attributes, queue_name=name, creating=creating,
                              queue_name_of_arn=account.name_from_arn)
    settings = {key: value for key, value in parsed.settings.items()
                if key not in _NAME_SETTINGS}
    if "dead_letter_queue" in settings and settings["dead_letter_queue"] is None:
        settings["max_retries"] = fields.MAX_RETRIES.high  # no redrive: received until retention
    return settings


def create_queue(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """CreateQueue: ``create_queue``; equal attributes again answer the same URL."""
    name = request.params["QueueName"]
    settings = {**SQS_QUEUE_DEFAULTS,
                **_settings(request.params.get("Attributes", {}), name, account, True)}
    tags = request.params.get("tags")
    if tags:
        settings["tags"] = tags
    ctx.deps.command({"op": "create_queue", "name": name, "settings": settings})
    return {"QueueUrl": account.queue_url(name)}


def delete_queue(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """DeleteQueue: ``delete_queue`` (its messages go with it)."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    ctx.deps.command({"op": "delete_queue", "name": name})
    return {}


def get_queue_url(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """GetQueueUrl: the URL of an existing queue."""
    owner = request.params.get("QueueOwnerAWSAccountId")
    if owner is not None and owner != ctx.account_id:
        raise SqsError(SqsCode.QUEUE_DOES_NOT_EXIST, "The specified queue does not exist.")
    name = request.params["QueueName"]
    queue_of(ctx, name)
    return {"QueueUrl": account.queue_url(name)}


def _page(names: list[str], request: SqsRequest) -> tuple[list[str], str | None]:
    """One page of sorted ``names`` after ``NextToken`` (the last name of the previous page)."""
    after = request.params.get("NextToken")
    if after is not None:
        names = [name for name in names if name > after]
    limit = request.params.get("MaxResults")
    if limit is None or len(names) <= limit:
        return names[:DEFAULT_LIST_RESULTS], None
    return names[:limit], names[limit - 1]


def list_queues(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """ListQueues: queues by name prefix, paged with MaxResults and NextToken."""
    prefix = request.params.get("QueueNamePrefix") or None
    value = ctx.deps.read({"op": "queues", "prefix": prefix})
    names, token = _page(sorted(queue["name"] for queue in value["queues"]), request)
    result: dict[str, Any] = {}
    if names:
        result["QueueUrls"] = [account.queue_url(name) for name in names]
    if token is not None:
        result["NextToken"] = token
    return result


def get_queue_attributes(ctx: SqsContext, request: SqsRequest,
                         account: Account) -> dict[str, Any]:
    """GetQueueAttributes: settings as attributes, counts as the Approximate ones."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    queue = queue_of(ctx, name)
    settings = dict(queue["settings"])
    if not settings.get("max_message_bytes"):
        settings["max_message_bytes"] = None  # 0: the edges' default, shown as SQS's
    counts = queue.get("counts", {})
    dead_letter = settings.get("dead_letter_queue")
    figures = {
        "ApproximateNumberOfMessages": counts.get("pending", 0),
        "ApproximateNumberOfMessagesNotVisible": counts.get("leased", 0),
        "ApproximateNumberOfMessagesDelayed": 0,
        "CreatedTimestamp": queue.get("created_at_ms", 0) // 1000,
        "LastModifiedTimestamp": queue.get("updated_at_ms", 0) // 1000,
    }
    attributes = render_attributes(
        settings, {}, queue_name=name, queue_arn=account.queue_arn(name),
        dead_letter_arn=account.queue_arn(dead_letter) if dead_letter else None,
        counts=figures, names=request.params.get("AttributeNames"))
    return {"Attributes": attributes} if attributes else {}


def set_queue_attributes(ctx: SqsContext, request: SqsRequest,
                         account: Account) -> dict[str, Any]:
    """SetQueueAttributes: ``update_queue`` with the mapped settings."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    changes = _settings(request.params["Attributes"], name, account, False)
    if changes:
        ctx.deps.command({"op": "update_queue", "name": name, "changes": changes})
    else:
        queue_of(ctx, name)  # only attributes kept without effect: the queue must exist
    return {}


def purge_queue(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """PurgeQueue: ``purge_queue``."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    ctx.deps.command({"op": "purge_queue", "name": name})
    return {}


def _change_tags(ctx: SqsContext, name: str, tags: dict[str, str]) -> None:
    ctx.deps.command({"op": "update_queue", "name": name, "changes": {"tags": tags}})


def tag_queue(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """TagQueue: the queue's tags merged with the given ones (read, then ``update_queue``)."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    tags = dict(queue_of(ctx, name)["settings"].get("tags") or {})
    tags.update(request.params["Tags"])
    if len(tags) > fields.MAX_TAGS:
        raise SqsError(SqsCode.INVALID_PARAMETER_VALUE,
                       f"Tags: a queue has at most {fields.MAX_TAGS} tags")
    _change_tags(ctx, name, tags)
    return {}


def untag_queue(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """UntagQueue: the queue's tags without the given keys."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    tags = dict(queue_of(ctx, name)["settings"].get("tags") or {})
    for key in request.params["TagKeys"]:
        tags.pop(key, None)
    _change_tags(ctx, name, tags)
    return {}


def list_queue_tags(ctx: SqsContext, request: SqsRequest, account: Account) -> dict[str, Any]:
    """ListQueueTags: the queue's tags."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    tags = queue_of(ctx, name)["settings"].get("tags") or {}
    return {"Tags": dict(tags)} if tags else {}


def list_dead_letter_source_queues(ctx: SqsContext, request: SqsRequest,
                                   account: Account) -> dict[str, Any]:
    """ListDeadLetterSourceQueues: the queues whose dead-letter queue this one is."""
    name = account.name_from_url(request.params.get("QueueUrl"))
    queue_of(ctx, name)
    value = ctx.deps.read({"op": "queues", "prefix": None})
    sources = sorted(queue["name"] for queue in value["queues"]
                     if queue["settings"].get("dead_letter_queue") == name)
    names, token = _page(sources, request)
    result: dict[str, Any] = {"queueUrls": [account.queue_url(source) for source in names]}
    if token is not None:
        result["NextToken"] = token
    return result


def start_message_move_task(ctx: SqsContext, request: SqsRequest,
                            account: Account) -> dict[str, Any]:
    """StartMessageMoveTask: ``move_tasks``, run to the end before the answer (synchronous);
    the result is kept for ListMessageMoveTasks in this API process."""
    source_arn = request.params["SourceArn"]
    source = account.name_from_arn(source_arn, "SourceArn")
    destination_arn = request.params.get("DestinationArn")
    destination = (account.name_from_arn(destination_arn, "DestinationArn")
                   if destination_arn is not None else None)
    started_ms = int(time.time() * 1000)
    value = ctx.deps.command({"op": "move_tasks", "source": source,
                              "destination": destination})
    handle = uuid.uuid4().hex
    record: dict[str, Any] = {
        "TaskHandle": handle, "Status": "COMPLETED", "SourceArn": source_arn,
        "ApproximateNumberOfMessagesMoved": value["count"],
        "ApproximateNumberOfMessagesToMove": value["count"],
        "StartedTimestamp": started_ms,
    }
    if destination_arn is not None:
        record["DestinationArn"] = destination_arn
    with ctx.lock:
        ctx.move_tasks.append(record)
    return {"TaskHandle": handle}


def list_message_move_tasks(ctx: SqsContext, request: SqsRequest,
                            account: Account) -> dict[str, Any]:
    """ListMessageMoveTasks: the newest move tasks of a source queue run by this process."""
    source_arn = request.params["SourceArn"]
    account.name_from_arn(source_arn, "SourceArn")
    limit = request.params.get("MaxResults", 1)
    with ctx.lock:
        records = [dict(r) for r in reversed(ctx.move_tasks) if r["SourceArn"] == source_arn]
    for record in records:
        record.pop("TaskHandle")  # shown only while a task runs, as in SQS
    return {"Results": records[:limit]}


def cancel_message_move_task(ctx: SqsContext, request: SqsRequest,
                             account: Account) -> dict[str, Any]:
    """CancelMessageMoveTask: moves run to completion at once, so there is never one to
    cancel: a known handle is refused as finished, an unknown one as not found."""
    handle = request.params["TaskHandle"]
    with ctx.lock:
        known = any(record["TaskHandle"] == handle for record in ctx.move_tasks)
    if known:
        raise SqsError(SqsCode.RESOURCE_NOT_FOUND,
                       "TaskHandle: the message move task has completed; only a running "
                       "task can be cancelled")
    raise SqsError(SqsCode.RESOURCE_NOT_FOUND, "TaskHandle: no such message move task")


HANDLERS = {
    "CreateQueue": create_queue, "DeleteQueue": delete_queue, "GetQueueUrl": get_queue_url,
    "ListQueues": list_queues, "GetQueueAttributes": get_queue_attributes,
    "SetQueueAttributes": set_queue_attributes, "PurgeQueue": purge_queue,
    "TagQueue": tag_queue, "UntagQueue": untag_queue, "ListQueueTags": list_queue_tags,
    "ListDeadLetterSourceQueues": list_dead_letter_source_queues,
    "StartMessageMoveTask": start_message_move_task,
    "ListMessageMoveTasks": list_message_move_tasks,
    "CancelMessageMoveTask": cancel_message_move_task,
}
