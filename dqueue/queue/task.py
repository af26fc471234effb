"""One task of the queue, its status, and its plain form."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from dqueue.queue.fields import DEFAULT_QUEUE


class TaskStatus(StrEnum):
    """Where a task is in its life. A task is in exactly one status at a time."""

    PENDING = "pending"
    LEASED = "leased"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"


# Attributes of an enum class go through EnumType.__getattr__ (slow): hot code uses constants.
_PENDING = TaskStatus.PENDING

#: Statuses a task never leaves except by redrive (dead) or by pruning.
FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.DEAD, TaskStatus.CANCELLED})


class Task:
    """A task as the state machine holds it (mutable, owned by one ``QueueState``).

    Invariants kept by ``QueueState``:
    - ``lease_*`` fields are set if and only if ``status`` is LEASED;
    - ``attempts`` counts the leases granted since enqueue or the last redrive;
    - ``seq`` is unique and increases in log order: it orders tasks of equal priority;
    - ``epoch`` changes each time the task enters the ready, delayed or lease index (and on
      each extend), so that index entries pushed before are recognised as stale (lazy deletion).
    """

    __slots__ = ("attempts", "created_at_ms", "done_token", "done_worker", "epoch", "group",
                 "id", "idempotency_key", "last_error", "last_traceback", "lease_expires_at_ms",
                 "lease_token", "lease_worker", "max_retries", "payload", "priority", "queue",
                 "result", "seq", "source_queue", "status", "type", "updated_at_ms",
                 "visible_at_ms")

    def __init__(self, task_id: str, task_type: str, payload: Any, priority: int,
                 max_retries: int, idempotency_key: str | None, now_ms: int, visible_at_ms: int,
                 seq: int) -> None:
        self.id = task_id
        self.type = task_type
        self.payload = payload
        self.priority = priority
        self.max_retries = max_retries
        self.attempts = 0
        self.status = _PENDING
        self.idempotency_key = idempotency_key
        self.created_at_ms = now_ms
        self.updated_at_ms = now_ms
        self.visible_at_ms = visible_at_ms
        self.lease_worker: str | None = None
        self.lease_token: str | None = None
        self.lease_expires_at_ms: int | None = None
        self.last_error: str | None = None
        self.seq = seq
        self.epoch = 0
        # Holder of the lease that completed the task: a repeated ack by it is idempotent.
        self.done_worker: str | None = None
        self.done_token: str | None = None
        # The queue the task is in, and the one it was dead-lettered from (redrive goes back).
        self.queue = DEFAULT_QUEUE
        self.source_queue: str | None = None
        # The message group in a FIFO queue (delivered in order, one at a time), else None.
        self.group: str | None = None
        # The handler's return value (any JSON; set by the ack that completed the task), and
        # the last lines of the traceback of the last failure (set by nack with ``traceback``).
        self.result: Any = None
        self.last_traceback: str | None = None

    def to_plain(self) -> dict[str, Any]:
        """Return the plain form of docs/internals.md section 2 (payload shared, not copied)."""
        lease = None
        if self.lease_token is not None:
            lease = {"worker_id": self.lease_worker, "token": self.lease_token,
                     "expires_at_ms": self.lease_expires_at_ms}
        plain = {"id": self.id, "type": self.type, "payload": self.payload,
                 "priority": self.priority, "max_retries": self.max_retries,
                 "attempts": self.attempts, "status": self.status._value_,
                 "idempotency_key": self.idempotency_key, "created_at_ms": self.created_at_ms,
                 "updated_at_ms": self.updated_at_ms, "visible_at_ms": self.visible_at_ms,
                 "lease": lease, "last_error": self.last_error, "queue": self.queue,
                 "source_queue": self.source_queue}
        if self.result is not None:  # only on a task completed with a result
            plain["result"] = self.result
        if self.last_traceback is not None:
            plain["last_traceback"] = self.last_traceback
        if self.group is not None:  # FIFO queues only: the group, and the log-order number
            plain["group"] = self.group  # that SQS's SequenceNumber is made of
            plain["seq"] = self.seq
        return plain

    def to_row(self) -> list[Any]:
        """Return every field as a list, the order ``from_row`` reads (snapshot form)."""
        return [self.id, self.type, self.payload, self.priority, self.max_retries, self.attempts,
                self.status.value, self.idempotency_key, self.created_at_ms, self.updated_at_ms,
                self.visible_at_ms, self.lease_worker, self.lease_token,
                self.lease_expires_at_ms, self.last_error, self.seq, self.done_worker,
                self.done_token]

    @classmethod
    def from_row(cls, row: list[Any]) -> Task:
        """Inverse of ``to_row``, checking every field's type.

        Raises:
            ValueError: on a row of the wrong shape or with a field of the wrong type.
        """
        if type(row) is not list or len(row) != ROW_FIELDS:
            raise ValueError("malformed task row")
        (task_id, task_type, payload, priority, max_retries, attempts, status_text, key,
         created_at_ms, updated_at_ms, visible_at_ms, lease_worker, lease_token,
         lease_expires_at_ms, last_error, seq, done_worker, done_token) = row
        status = _STATUS_BY_TEXT.get(status_text) if type(status_text) is str else None
        # `type(x) is int` also refuses bool, which JSON never yields for these fields.
        if (status is None or type(task_id) is not str or type(task_type) is not str
                or type(priority) is not int or type(max_retries) is not int
                or type(attempts) is not int or type(created_at_ms) is not int
                or type(updated_at_ms) is not int or type(visible_at_ms) is not int
                or type(seq) is not int
                or not (key is None or type(key) is str)
                or not (last_error is None or type(last_error) is str)
                or not (done_worker is None or type(done_worker) is str)
                or not (done_token is None or type(done_token) is str)):
            raise ValueError(f"task row with a field of the wrong type: {str(row)[:200]}")
        if status is TaskStatus.LEASED:
            if (type(lease_worker) is not str or type(lease_token) is not str
                    or type(lease_expires_at_ms) is not int):
                raise ValueError(f"leased task {task_id} without a valid lease")
        elif (lease_worker is not None or lease_token is not None
              or lease_expires_at_ms is not None):
            raise ValueError(f"task {task_id} has a lease but is {status_text}")
        return task_from_fields(task_id, task_type, payload, priority, max_retries, attempts,
                                status, key, created_at_ms, updated_at_ms, visible_at_ms,
                                lease_worker, lease_token, lease_expires_at_ms, last_error, seq,
                                done_worker, done_token)


def task_from_fields(task_id: str, task_type: str, payload: Any, priority: int,
                     max_retries: int, attempts: int, status: TaskStatus, key: str | None,
                     created_at_ms: int, updated_at_ms: int, visible_at_ms: int,
                     lease_worker: str | None, lease_token: str | None,
                     lease_expires_at_ms: int | None, last_error: str | None, seq: int,
                     done_worker: str | None, done_token: str | None,
                     queue: str = DEFAULT_QUEUE, source_queue: str | None = None,
                     group: str | None = None, result: Any = None,
                     last_traceback: str | None = None) -> Task:
    """Build a task from every stored field, in ``to_row`` order then the queue fields (which
    format-1 rows and format-2 snapshots do not have) and the result fields (format 4 only),
    without checking them.

    The snapshot decoders check the fields first; ``epoch`` starts at 0 (no index entry yet).
    """
    task = Task.__new__(Task)
    task.id, task.type, task.payload, task.priority = task_id, task_type, payload, priority
    task.max_retries, task.attempts, task.status = max_retries, attempts, status
    task.idempotency_key, task.created_at_ms = key, created_at_ms
    task.updated_at_ms, task.visible_at_ms = updated_at_ms, visible_at_ms
    task.lease_worker, task.lease_token = lease_worker, lease_token
    task.lease_expires_at_ms, task.last_error = lease_expires_at_ms, last_error
    task.seq, task.epoch = seq, 0
    task.done_worker, task.done_token = done_worker, done_token
    task.queue, task.source_queue, task.group = queue, source_queue, group
    task.result, task.last_traceback = result, last_traceback
    return task


_STATUS_BY_TEXT = {status.value: status for status in TaskStatus}
ROW_FIELDS = 18
