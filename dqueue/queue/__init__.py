"""The task queue as a pure, deterministic state machine (docs/internals.md section 2).

Stdlib only: no clock, random source, disk or socket. The node applies committed log entries
to a ``QueueState`` and answers reads from it.
"""

from dqueue.queue.commands import (
    Ack,
    AckBatch,
    Cancel,
    Command,
    Configure,
    Enqueue,
    Extend,
    InvalidCommand,
    Lease,
    Nack,
    NewTask,
    Purge,
    Redrive,
    Tick,
    command_from_plain,
)
from dqueue.queue.config import QueueConfig
from dqueue.queue.state import QueueState
from dqueue.queue.task import TaskStatus

__all__ = ["Ack", "AckBatch", "Cancel", "Command", "Configure", "Enqueue", "Extend",
           "InvalidCommand", "Lease", "Nack", "NewTask", "Purge", "QueueConfig", "QueueState",
           "Redrive", "TaskStatus", "Tick", "command_from_plain"]
