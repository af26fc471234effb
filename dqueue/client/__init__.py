"""The dqueue SDK: ``Client`` over HTTP and ``ZmqWorkerClient`` over the worker gateway."""

from dqueue.client.errors import (
    DQueueError,
    InvalidRequest,
    InvalidState,
    LeaseConflict,
    NoLeader,
    ServerError,
    TaskNotFound,
    Unavailable,
)
from dqueue.client.http_client import Client, RetryPolicy, TaskPage
from dqueue.client.task import Lease, Task, TaskStatus
from dqueue.client.zmq_client import ZmqWorkerClient

__all__ = [
    "Client",
    "DQueueError",
    "InvalidRequest",
    "InvalidState",
    "Lease",
    "LeaseConflict",
    "NoLeader",
    "RetryPolicy",
    "ServerError",
    "Task",
    "TaskNotFound",
    "TaskPage",
    "TaskStatus",
    "Unavailable",
    "ZmqWorkerClient",
]
