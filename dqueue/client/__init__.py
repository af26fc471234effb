"""The dqueue SDK: ``Client`` over HTTP, ``AsyncClient`` over HTTP for asyncio; ``ZmqWorkerClient``
and ``ZmqProducer`` over the worker gateway."""

from typing import Any

from dqueue.client.async_client import AsyncClient
from dqueue.client.errors import (
    DQueueError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidState,
    LeaseConflict,
    NoLeader,
    QueueExists,
    QueueFull,
    QueueNotFound,
    ServerError,
    TaskNotFound,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from dqueue.client.http_client import Client, RetryPolicy, TaskPage
from dqueue.client.task import Lease, Task, TaskStatus

__all__ = [
    "AsyncClient",
    "Client",
    "DQueueError",
    "Forbidden",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "InvalidState",
    "Lease",
    "LeaseConflict",
    "NoLeader",
    "QueueExists",
    "QueueFull",
    "QueueNotFound",
    "RetryPolicy",
    "ServerError",
    "Task",
    "TaskNotFound",
    "TaskPage",
    "TaskStatus",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
    "ZmqProducer",
    "ZmqWorkerClient",
]


def __getattr__(name: str) -> Any:
    # The ZeroMQ clients are imported on first use: the CLI and HTTP-only users skip loading zmq.
    if name == "ZmqWorkerClient":
        from dqueue.client.zmq_client import ZmqWorkerClient

        return ZmqWorkerClient
    if name == "ZmqProducer":
        from dqueue.client.zmq_producer import ZmqProducer

        return ZmqProducer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
