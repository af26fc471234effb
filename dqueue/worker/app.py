"""Writing handlers: the ``Worker`` registry, the task context and handler outcomes.

```python
from dqueue.worker import Worker, DeadLetter

worker = Worker()

@worker.task("email")
def send_email(payload, ctx):
    ...                       # return: ack; raise: nack (retried); raise DeadLetter: no retries
    return {"sent": True}     # the return value is the task's result (JSON, 64 KiB at most)
```

A handler runs on a runtime thread with the task's payload and a ``TaskContext``. This module only
decides what a run means (``run_handler``); leasing, acking and lease extension are the runtime's.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dqueue.client.task import Task
from dqueue.queue.fields import REASON
from dqueue.queue.rate_limits import check_rate_limit
from dqueue.queue.results import DEFAULT_MAX_RESULT_BYTES, result_problem, traceback_tail
from dqueue.worker.options import (
    BackoffFn,
    Retry,
    TaskOptions,
    failure_dead_letters,
    retry_delay_s,
)

log = logging.getLogger("dqueue.worker")

Handler = Callable[[Any, "TaskContext"], Any]


class DeadLetter(Exception):
    """Raise from a handler to send the task to the dead-letter queue at once, without retries."""


class Verdict(StrEnum):
    """What the runtime tells the server about one run."""

    ACK = "ack"
    NACK = "nack"
    DEAD_LETTER = "dead_letter"
    DROP = "drop"  # the lease was lost meanwhile: the result is dropped, nothing is sent


#: The exception type named in ``last_error`` when a handler's return value cannot be a result.
INVALID_RESULT = "InvalidResult"


@dataclass(frozen=True)
class Completion:
    """The end of one run: the task as leased, the verdict, the handler's return value (an
    ack's ``result``), and a failure's reason ("ExceptionType: message") and traceback tail."""

    task: Task
    verdict: Verdict
    reason: str = ""
    result: Any = None
    traceback: str | None = None
    retry_delay: float | None = None  # seconds: a nack's retry_delay_ms (None: the queue's)


class TaskContext:
    """What a handler knows about its task, and its way to ask for more time.

    Attributes:
        task: The task as leased (id, type, attempts, lease).
        worker_id: The id this worker leases under.
    """

    __slots__ = ("_extend", "_is_lost", "_log", "task", "worker_id")

    def __init__(
        self,
        task: Task,
        worker_id: str,
        extend: Callable[[Task, float | None], None],
        is_lost: Callable[[str], bool],
    ) -> None:
        self.task = task
        self.worker_id = worker_id
        self._extend = extend
        self._is_lost = is_lost
        self._log: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records name the task (built on first use: most handlers never log)."""
        if self._log is None:
            self._log = logging.LoggerAdapter(log, {"task_id": self.task.id,
                                                    "task_type": self.task.type})
        return self._log

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self.task.id

    @property
    def attempt(self) -> int:
        """Which delivery this is, from 1."""
        return self.task.attempts

    @property
    def lease_lost(self) -> bool:
        """True once the runtime learned that the lease passed to another worker (a handler
        that checks it may stop early: its result would be dropped)."""
        return self._is_lost(self.task.id)

    def extend(self, lease_seconds: float | None = None) -> None:
        """Ask for the lease to run ``lease_seconds`` from now (the runtime's lease when None).

        The runtime already extends leases of running handlers before they expire; call this
        when a handler knows it needs much longer. It does not wait for the server's answer.
        """
        self._extend(self.task, lease_seconds)

    def retry(self, countdown: float | None = None, reason: str = "") -> Retry:
        """Fail this attempt and retry in ``countdown`` seconds (the type's backoff when
        None): raises ``Retry``, which counts an attempt and respects ``max_retries`` like any
        failure. Written ``raise ctx.retry(countdown=5)`` or just called."""
        if countdown is not None and (isinstance(countdown, bool)
                                      or not isinstance(countdown, int | float)
                                      or not 0 <= countdown <= 7 * 86_400):
            raise ValueError(f"countdown must be 0 to 604800 seconds, not {countdown!r}")
        raise Retry(countdown, reason)


class Worker:
    """A registry of handlers by task type, the object ``--app module:worker`` names.

    Args:
        name: A label for logs.
    """

    def __init__(self, name: str = "worker") -> None:
        self.name = name
        self.handlers: dict[str, Handler] = {}
        # type -> "N/s" of ``rate_limit=``: set cluster-wide at start (rate_limits.py).
        self.rate_limits: dict[str, str] = {}
        self.options: dict[str, TaskOptions] = {}

    def task(self, type: str, *, max_retries: int | None = None,
             retry_for: Any = None, dead_letter_for: Any = (),
             backoff: BackoffFn | None = None,
             rate_limit: str | None = None) -> Callable[[Handler], TaskHandle]:
        """Decorator registering the function as the handler of tasks of ``type``, with the
        type's options (``dqueue.worker.options.TaskOptions``; a bad one raises ValueError at
        decoration). The decorated name is a ``TaskHandle``: callable like the function, and
        ``handle.enqueue(client, payload, **overrides)`` enqueues a task of the type.

        ``rate_limit`` (``"100/m"``): at most that many tasks of ``type`` leased per second,
        minute or hour over the whole cluster; the worker sets it at start (docs/worker.md).
        """
        options = TaskOptions(max_retries=max_retries, retry_for=retry_for,
                              dead_letter_for=dead_letter_for, backoff=backoff)
        limit = None if rate_limit is None else check_rate_limit(rate_limit, "rate_limit").text

        def decorate(fn: Handler) -> TaskHandle:
            handle = TaskHandle(type, fn, options)
            self.register(type, handle)
            self.options[type] = options
            if limit is not None:
                self.rate_limits[type] = limit
            return handle
        return decorate

    def register(self, type: str, fn: Handler) -> None:
        """Register ``fn`` for ``type``; a type has one handler.

        Raises:
            ValueError: ``type`` already has a handler.
        """
        if not type or not isinstance(type, str):
            raise ValueError("a task type is a non-empty string")
        if type in self.handlers:
            raise ValueError(f"task type {type!r} already has a handler")
        self.handlers[type] = fn

    @property
    def types(self) -> list[str]:
        """The registered task types, sorted."""
        return sorted(self.handlers)

    def types_for(self, only: Sequence[str] | None) -> list[str]:
        """The types to lease: the registered ones, restricted to ``only`` when given.

        Raises:
            ValueError: ``only`` names a type with no handler.
        """
        if not only:
            return self.types
        missing = sorted(set(only) - set(self.handlers))
        if missing:
            raise ValueError(f"no handler for task types {missing}")
        return sorted(set(only))


class TaskHandle:
    """A decorated handler: call it as the function, or enqueue a task of its type."""

    __slots__ = ("fn", "options", "type")

    def __init__(self, type: str, fn: Handler, options: TaskOptions) -> None:
        self.type, self.fn, self.options = type, fn, options

    def __call__(self, payload: Any, ctx: TaskContext) -> Any:
        """Run the handler itself (as a test would)."""
        return self.fn(payload, ctx)

    def enqueue(self, client: Any, payload: Any = None, **overrides: Any) -> Any:
        """Enqueue a task of this type with ``client`` (``Client`` or anything with its
        ``enqueue``): the decorator's ``max_retries`` unless ``overrides`` give one, and
        ``priority``, ``delay``, ``idempotency_key``, ``queue``... as the client takes them."""
        if self.options.max_retries is not None and overrides.get("max_retries") is None:
            overrides["max_retries"] = self.options.max_retries
        return client.enqueue(self.type, payload, **overrides)


def run_handler(worker: Worker, ctx: TaskContext, check_lost: bool = True,
                max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> Completion:
    """Run the handler of ``ctx.task`` and turn what happened into a Completion.

    Never raises: a handler's exception is the failure reason, with the last lines of its
    traceback (also logged in full). A return value is the ack's result; one that cannot be
    (not JSON, or over ``max_result_bytes`` as compact JSON) fails the run as an
    ``InvalidResult`` instead. With ``check_lost`` False the caller checks for a lost lease
    itself (the runtime does, under the lock it takes anyway).
    """
    task = ctx.task
    handler = worker.handlers.get(task.type)
    if handler is None:
        return Completion(task, Verdict.NACK, f"no handler for task type {task.type!r}")
    options = worker.options.get(task.type, _NO_OPTIONS)
    result = tb = delay = None
    try:
        result = handler(task.payload, ctx)
    except DeadLetter as exc:
        verdict, reason, tb = Verdict.DEAD_LETTER, _reason(exc), _traceback_tail()
    except Exception as exc:
        tb = _traceback_tail()  # logged by the runtime with the verdict (worker.events)
        verdict, reason = Verdict.NACK, _reason(exc)
        if failure_dead_letters(options, exc):
            verdict = Verdict.DEAD_LETTER
        else:
            delay = _delay_of(options, exc, task.attempts)
    else:
        verdict, reason = Verdict.ACK, ""
        problem = None if result is None else result_problem(result, max_result_bytes)
        if problem is not None:
            verdict, reason, result = Verdict.NACK, invalid_result_reason(problem), None
            ctx.log.warning("task %s (%s): %s", task.id, task.type, reason)
    if check_lost and ctx.lease_lost:
        ctx.log.warning("task %s: lease lost while running; result (%s) dropped", task.id,
                        verdict.value)
        return Completion(task, Verdict.DROP, reason)
    return Completion(task, verdict, reason, result, tb, delay)


_NO_OPTIONS = TaskOptions()


def _delay_of(options: TaskOptions, exc: Exception, attempt: int) -> float | None:
    """A retry's delay in seconds: ``ctx.retry``'s countdown, else the type's backoff."""
    if isinstance(exc, Retry) and exc.countdown is not None:
        return exc.countdown
    try:
        return retry_delay_s(options, attempt)
    except ValueError as problem:
        log.warning("task type backoff: %s; the queue's backoff applies", problem)
        return None


def invalid_result_reason(problem: str) -> str:
    """The nack reason of a run whose return value cannot be kept as its result."""
    reason = f"{INVALID_RESULT}: the handler's return value cannot be the task's result ({problem})"
    return reason[:REASON.max_chars]


def _traceback_tail() -> str:
    """The last lines of the traceback being handled, as a nack's ``traceback``."""
    return traceback_tail(_encodable(traceback.format_exc().rstrip()))


def _reason(exc: BaseException) -> str:
    text = str(exc)
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return _encodable(reason)[:REASON.max_chars]


def _encodable(text: str) -> str:
    """``text`` with each lone surrogate (an exception about a file name decoded with
    ``surrogateescape``, say) written as its ``\\udcff`` escape: no UTF-8 encoder, msgpack's
    and the node's JSON checks included, takes a lone surrogate, so the nack would fail."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
