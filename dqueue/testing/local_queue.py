"""``LocalQueue``: the real queue state machine in the caller's process, for tests without a server.

In the spirit of dramatiq's ``StubBroker``: producer code and task handlers are tested against
the very rules a cluster applies (``dqueue.queue.QueueState``: priorities, leases and their
tokens, retries with backoff, dead letters, idempotency keys), with no node, socket or disk.
Each call builds the plain command a node would commit, checks it with the same parser
(``command_from_plain``) and applies it at the next log index, so an answer here is the answer a
cluster would give, except that:

- the HTTP layer's stricter limits (docs/http-api.md) are not checked, only the queue's own;
- there is no replication, leader or network: nothing fails with ``NoLeader``;
- time is the injected clock (``ManualClock`` moves only when told), read once per command,
  as the leader stamps ``now_ms`` on every command it proposes.

Three surfaces over one state:

- the SDK client's (``dqueue.client.Client``): ``enqueue``, ``lease``, ``ack``... returning
  ``Task`` values and raising the SDK's typed errors;
- ``run_worker``: runs a ``dqueue.worker.Worker`` app's handlers on the visible tasks, with the
  runtime's verdicts (return acks, raising nacks, ``DeadLetter`` dead-letters);
- the API-to-Raft IPC client's (``command``, ``read``), so the HTTP app and the worker gateway
  run in tests on the real state machine (``create_app(lambda: local_queue, ...)``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dqueue.client.errors import DQueueError, InvalidRequest, WaitTimeout, error_from_code
from dqueue.client.http_client import TaskPage, collect_pages
from dqueue.client.task import Task, delay_ms_of
from dqueue.node.queries import (
    QUEUE_OPS,
    BadQuery,
    check_query,
    run_queue_query,
    wait_is_over,
    wait_ms_of,
)
from dqueue.protocol.ipc_client import BadRequest
from dqueue.queue import InvalidCommand, QueueConfig, QueueState, command_from_plain
from dqueue.queue.task import FINISHED
from dqueue.worker.app import Completion, TaskContext, Verdict, Worker, run_handler

# 2026-01-01T00:00:00Z: where a ManualClock starts unless told otherwise.
EPOCH_MS = 1_767_225_600_000


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch, from the system clock."""
    return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told: call it for the time, ``advance`` to move it.

    Args:
        now_ms: The starting time, in milliseconds since the Unix epoch.
    """

    def __init__(self, now_ms: int = EPOCH_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> int:
        """Move the clock forward by ``seconds`` and return the new time in milliseconds."""
        if seconds < 0:
            raise ValueError("time never runs backwards")
        self.now_ms += round(seconds * 1000)
        return self.now_ms


class LocalQueue:
    """One in-process queue on the real ``QueueState``; thread-safe.

    Args:
        config: The queue settings (lease timeout, retries, backoff, retention); the node's
            defaults when None.
        clock: Gives the time in milliseconds since the epoch (``ManualClock()`` for tests that
            move time themselves; the wall clock when None).
        worker_id: The default ``worker_id`` of ``lease``, ``ack``, ``nack`` and ``extend``.
        new_id: Gives task ids (default: ``local-1``, ``local-2``... in enqueue order).
    """

    def __init__(self, config: QueueConfig | None = None, *,
                 clock: Callable[[], int] | None = None, worker_id: str = "local-worker",
                 new_id: Callable[[], str] | None = None) -> None:
        self.state = QueueState(config)
        self.clock = clock if clock is not None else wall_clock_ms
        self.worker_id = worker_id
        counter = itertools.count(1)
        self._new_id = new_id if new_id is not None else (lambda: f"local-{next(counter)}")
        self._index = 0
        # Guards the state and the index; notified after every command (long polls wait on it).
        self._changed = threading.Condition()

    # -- the IPC client's surface ---------------------------------------------------------

    def command(self, cmd: Mapping[str, Any], timeout_ms: int = 5_000,
                wait_ms: int = 0) -> dict[str, Any]:
        """Apply one plain command (docs/internals.md section 4) and return its outcome.

        A ``lease`` with ``wait_ms`` waits up to that long for a task to become visible, as the
        node parks a long poll. ``timeout_ms`` is accepted for the interface and ignored.

        Raises:
            BadRequest: the command is malformed (the node refuses it the same way).
        """
        if cmd.get("op") == "lease" and wait_ms > 0:
            self._wait_visible(cmd.get("types"), wait_ms)
        with self._changed:
            try:
                command = command_from_plain({**cmd, "now_ms": self.clock()})
            except InvalidCommand as exc:
                raise BadRequest(f"{exc.field}: {exc.message}") from None
            self._index += 1
            outcome = self.state.apply(command, self._index)
            self._changed.notify_all()
        assert outcome is not None  # apply answers whenever reply is True
        return outcome

    def read(self, query: Mapping[str, Any], timeout_ms: int = 5_000,
             stale: bool = False) -> Any:
        """Answer a read query (get, stats, list, queues, queue, health, cluster) from the state.

        Raises:
            BadRequest: an unknown query or a bad field.
        """
        op = query.get("op")
        with self._changed:
            if op in QUEUE_OPS:  # the node's own query code, on the same state
                try:
                    check_query(query)
                    self._wait_finished(query)
                    return run_queue_query(self.state, query, self._figures)
                except BadQuery as exc:
                    raise BadRequest(str(exc)) from None
            if op == "health":
                return {**self._figures(), "role": "leader", "leader_id": "local",
                        "leader_http": None}
            if op == "cluster":
                return {"leader_id": "local", "term": 1, "members": [
                    {"id": "local", "role": "leader", "match_index": self._index, "lag": 0}]}
        raise BadRequest(f"op: unknown query {op!r}")

    def close(self) -> None:
        """Nothing to release; here for the IPC client's interface."""

    def has_visible(self, types: Sequence[str] | None = None) -> bool:
        """Whether a lease of ``types`` (None: any) made now would get a task: what a node
        checks before it proposes a lease, and parks a long poll while it is False."""
        with self._changed:
            return self.state.has_visible(types, self.clock())

    def _figures(self) -> dict[str, Any]:
        return {"node_id": "local", "term": 1, "commit_index": self._index,
                "applied_index": self._index}

    def _wait_finished(self, query: Mapping[str, Any]) -> None:
        """A ``get`` with ``wait_ms`` waits (lock held) until its task is finished or gone, or
        the wait is over, as the node's router does (dqueue/node/queries.py)."""
        wait_ms = wait_ms_of(query)
        if wait_ms <= 0:
            return
        deadline = time.monotonic() + wait_ms / 1000
        while not wait_is_over(self.state, query):
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                return
            self._changed.wait(left_s)  # woken by every command

    def _wait_visible(self, types: Sequence[str] | None, wait_ms: int) -> None:
        deadline = time.monotonic() + wait_ms / 1000
        with self._changed:
            while not self.state.has_visible(types, self.clock()):
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    return
                # Woken by every command; the short bound notices a delay or backoff ending.
                self._changed.wait(min(left_s, 0.01))

    # -- the SDK client's surface -----------------------------------------------------------

    def _apply(self, cmd: dict[str, Any], wait_ms: int = 0) -> dict[str, Any]:
        try:
            outcome = self.command(cmd, wait_ms=wait_ms)
        except BadRequest as exc:
            field, _, message = str(exc).partition(": ")
            raise InvalidRequest(message, code="invalid_field", field=field) from None
        if not outcome["ok"]:
            raise error_from_code(outcome["code"], outcome["message"])
        value: dict[str, Any] = outcome["value"]
        return value

    def enqueue(self, type: str, payload: Any = None, *, priority: int | None = None,
                max_retries: int | None = None, idempotency_key: str | None = None,
                delay: float | None = None) -> Task:
        """Enqueue one task, as ``Client.enqueue`` (``duplicate`` True for a known key)."""
        return self.enqueue_many([{"type": type, "payload": payload, "priority": priority,
                                   "max_retries": max_retries,
                                   "idempotency_key": idempotency_key, "delay": delay}])[0]

    def enqueue_many(self, tasks: Iterable[Mapping[str, Any]]) -> list[Task]:
        """Enqueue tasks in one command, as ``Client.enqueue_many`` (same item fields)."""
        plain = []
        for item in tasks:
            unknown = set(item) - {"type", "payload", "priority", "max_retries",
                                   "idempotency_key", "delay"}
            if unknown:
                raise ValueError(f"unknown task fields {sorted(unknown)}")
            delay = item.get("delay")
            plain.append({"id": self._new_id(), "type": item["type"],
                          "payload": item.get("payload"), "priority": item.get("priority"),
                          "max_retries": item.get("max_retries"),
                          "idempotency_key": item.get("idempotency_key"),
                          "delay_ms": None if delay is None else round(delay * 1000)})
        value = self._apply({"op": "enqueue", "tasks": plain})
        return [Task.from_wire({**task, "duplicate": dup})
                for task, dup in zip(value["tasks"], value["duplicates"], strict=True)]

    def get(self, task_id: str) -> Task:
        """The task with that id. Raises TaskNotFound."""
        found = self.read({"op": "get", "id": task_id})
        if found is None:
            raise error_from_code("not_found", f"no task {task_id}")
        return Task.from_wire(found)

    def wait(self, task_id: str, timeout: float = 30.0) -> Task:
        """``Client.wait``: the task once it is completed, dead or cancelled (commands from
        other threads end the wait). Raises WaitTimeout after ``timeout``, TaskNotFound."""
        found = self.read({"op": "get", "id": task_id,
                           "wait_ms": max(0, math.ceil(timeout * 1000))})
        if found is None:
            raise error_from_code("not_found", f"no task {task_id}")
        task = Task.from_wire(found)
        if task.status not in FINISHED:
            raise WaitTimeout(task_id, timeout, task)
        return task

    def cancel(self, task_id: str) -> Task:
        """Cancel a pending task. Raises TaskNotFound or InvalidState."""
        return Task.from_wire(self._apply({"op": "cancel", "id": task_id})["task"])

    def lease(self, worker_id: str | None = None, *, types: Sequence[str] | None = None,
              lease_seconds: float | None = None,
              wait_seconds: float | None = None) -> Task | None:
        """Lease the next visible task, or None; ``wait_seconds`` long-polls."""
        tasks = self.lease_many(1, worker_id, types=types, lease_seconds=lease_seconds,
                                wait_seconds=wait_seconds)
        return tasks[0] if tasks else None

    def lease_many(self, max_tasks: int, worker_id: str | None = None, *,
                   types: Sequence[str] | None = None, lease_seconds: float | None = None,
                   wait_seconds: float | None = None) -> list[Task]:
        """Lease up to ``max_tasks`` visible tasks in one command."""
        cmd = {"op": "lease", "worker_id": worker_id or self.worker_id,
               "types": list(types) if types else None, "max_tasks": max_tasks,
               "lease_ms": None if lease_seconds is None else round(lease_seconds * 1000)}
        value = self._apply(cmd, wait_ms=round((wait_seconds or 0) * 1000))
        return [Task.from_wire(task) for task in value["tasks"]]

    def _lease_op(self, task: Task | str, op: str, worker_id: str | None,
                  extra: dict[str, Any]) -> Task:
        if isinstance(task, Task):
            holder = worker_id or (task.lease.worker_id if task.lease else self.worker_id)
            cmd = {"op": op, "id": task.id, "worker_id": holder, "token": task.lease_token}
        else:
            cmd = {"op": op, "id": task, "worker_id": worker_id or self.worker_id}
        return Task.from_wire(self._apply({**cmd, **extra})["task"])

    def ack(self, task: Task | str, worker_id: str | None = None, *,
            result: Any = None) -> Task:
        """Complete a leased task, keeping ``result`` (any JSON) on it when given. Raises
        LeaseConflict if the lease is no longer ours."""
        return self._lease_op(task, "ack", worker_id,
                              {} if result is None else {"result": result})

    def nack(self, task: Task | str, reason: str = "", *, dead_letter: bool = False,
             worker_id: str | None = None, traceback: str | None = None,
             retry_delay: float | None = None) -> Task:
        """Fail a leased task: retried after backoff (or ``retry_delay`` seconds), or
        dead-lettered (at once if asked); ``traceback`` (its last lines) is kept as
        ``last_traceback``."""
        extra: dict[str, Any] = {"reason": reason, "dead_letter": dead_letter}
        if traceback is not None:
            extra["traceback"] = traceback
        if retry_delay is not None:
            extra["retry_delay_ms"] = delay_ms_of(retry_delay)
        return self._lease_op(task, "nack", worker_id, extra)

    def extend(self, task: Task | str, lease_seconds: float | None = None, *,
               worker_id: str | None = None) -> Task:
        """Push the lease's expiry to ``lease_seconds`` from now (the default when None)."""
        lease_ms = None if lease_seconds is None else round(lease_seconds * 1000)
        return self._lease_op(task, "extend", worker_id, {"lease_ms": lease_ms})

    def list_tasks(self, status: str = "dead", *, type: str | None = None,
                   limit: int | None = None, cursor: str | None = None) -> TaskPage:
        """One page of tasks in ``status`` (optionally of one type), in enqueue order."""
        try:
            page = self.read({"op": "list", "status": status, "type": type, "limit": limit,
                              "cursor": cursor})
        except BadRequest as exc:
            raise InvalidRequest(str(exc), code="invalid_field") from None
        return TaskPage([Task.from_wire(t) for t in page["tasks"]], page["next_cursor"])

    def dead_letters(self, *, type: str | None = None, limit: int = 1000) -> list[Task]:
        """The dead-letter queue (oldest first), up to ``limit`` tasks."""
        return collect_pages(lambda page_limit, cursor: self.list_tasks(
            "dead", type=type, limit=page_limit, cursor=cursor), limit)

    def redrive(self, task_id: str | None = None, *, type: str | None = None) -> int:
        """Re-queue dead tasks (one, one type, or all) with attempts reset; return the count."""
        return int(self._apply({"op": "redrive", "id": task_id, "type": type})["count"])

    def purge(self, *, type: str | None = None) -> int:
        """Delete dead tasks (of one type, or all); return the count."""
        return int(self._apply({"op": "purge", "type": type})["count"])

    def stats(self) -> dict[str, Any]:
        """Counts by status and by type, in the shape of ``GET /stats``."""
        stats = self.read({"op": "stats"})
        return {"tasks": stats["by_status"], "by_type": stats["by_type"],
                "raft": stats["raft"]}

    def health(self) -> dict[str, Any]:
        """The one local member's figures, in the shape of ``GET /health``."""
        return {"status": "ok", **self.read({"op": "health"})}

    # -- running a worker app's handlers ------------------------------------------------------

    def run_worker(self, worker: Worker, *, types: Sequence[str] | None = None,
                   max_tasks: int | None = None,
                   worker_id: str | None = None) -> list[Completion]:
        """Run ``worker``'s handlers on the visible tasks, one at a time, until none is left.

        Each task is leased, run by ``dqueue.worker.app.run_handler`` (the runtime's own
        verdicts) and acked, nacked or dead-lettered, so a handler that keeps failing ends in
        the dead-letter queue after its retries once the clock passes each backoff. A task
        nacked into a backoff is not visible yet: with a ``ManualClock``, ``advance`` it and
        call again.

        Args:
            worker: The app whose handlers run (the object ``--app module:worker`` names).
            types: Only these of its task types (default: every registered type).
            max_tasks: Stop after that many runs (default: when no task is visible).
            worker_id: The id the tasks are leased under (default: this queue's).

        Returns:
            The completions in the order the handlers ran.
        """
        holder = worker_id or self.worker_id
        wanted = worker.types_for(types)
        done: list[Completion] = []
        while (max_tasks is None or len(done) < max_tasks) and wanted:
            task = self.lease(holder, types=wanted)
            if task is None:
                break
            ctx = TaskContext(task, holder, self._extend_for(holder), self._is_lost(task))
            completion = run_handler(worker, ctx)
            if completion.verdict is Verdict.ACK:
                self.ack(task, holder, result=completion.result)
            elif completion.verdict in (Verdict.NACK, Verdict.DEAD_LETTER):
                self.nack(task, completion.reason,
                          dead_letter=completion.verdict is Verdict.DEAD_LETTER,
                          worker_id=holder, traceback=completion.traceback,
                          retry_delay=completion.retry_delay)
            done.append(completion)
        return done

    def _extend_for(self, holder: str) -> Callable[[Task, float | None], None]:
        def extend(task: Task, lease_seconds: float | None) -> None:
            # As in the runtime: a lost lease shows in ``lease_lost``, not here.
            with contextlib.suppress(DQueueError):
                self.extend(task, lease_seconds, worker_id=holder)
        return extend

    def _is_lost(self, leased: Task) -> Callable[[str], bool]:
        def is_lost(task_id: str) -> bool:
            # Lost once the task no longer holds this very lease (its token names it).
            found = self.read({"op": "get", "id": task_id})
            lease = (found or {}).get("lease") or {}
            return lease.get("token") != leased.lease_token
        return is_lost
