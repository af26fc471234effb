"""The task queue as a pure, deterministic state machine, applied from committed log entries.

Nothing here reads a clock, draws a random number or touches a disk: time comes only from the
``now_ms`` the leader stamps on every command, and cluster time is ``clock_ms = max(clock_ms,
now_ms)`` so that it never runs backwards across leader changes (docs/queue.md, its opening).
Applying the same commands at the same indexes gives the same outcomes and the same snapshot
bytes on every member (Raft paper section 5.3: state machines apply the same log in order).

Tasks live in named queues (``queues.py``, ``queue_admin.py``); ``default`` always exists.

Indexes (all heaps use lazy deletion: an entry is checked against its task when it surfaces):
- per queue, the ready index (ready.py) of its pending tasks whose ``visible_at_ms <= clock_ms``
  (a lease from one queue never looks at another's tasks);
- the delayed heap ``(visible_at_ms, seq)`` of pending tasks not yet visible;
- the lease heap ``(expires_at_ms, seq, epoch)``: expiry costs O(log n) per expired lease;
- the finished heap ``(prune_at_ms, seq)`` of completed, cancelled and dead tasks;
- the dedup heap ``(expires_at_ms, key)`` of idempotency keys.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from heapq import heappop, heappush
from typing import Any

from dqueue.queue import commands, enqueue, maintenance, queue_admin, queues, rate_limits, reads
from dqueue.queue import snapshot as snapshot_codec
from dqueue.queue.backoff import backoff_ms
from dqueue.queue.config import QueueConfig
from dqueue.queue.events import MAX_BUFFERED_EVENTS, Event, EventLog, QueueEvent
from dqueue.queue.fields import DEFAULT_QUEUE, is_legacy_token
from dqueue.queue.outcomes import Outcome
from dqueue.queue.outcomes import fail as _fail
from dqueue.queue.outcomes import ok as _ok
from dqueue.queue.queue_admin import QUEUE_NOT_FOUND, QueueRecord
from dqueue.queue.queues import QueueSettings
from dqueue.queue.release import HANDLERS as RELEASE_HANDLERS
from dqueue.queue.schedule_admin import HANDLERS as SCHEDULE_HANDLERS
from dqueue.queue.schedule_admin import ScheduleBook, fire_due
from dqueue.queue.sessions import Sessions
from dqueue.queue.task import FINISHED, Task, TaskStatus
from dqueue.queue.workers import HANDLERS as WORKER_HANDLERS
from dqueue.queue.workers import WorkerBook

LEASE_EXPIRED = "lease expired"
_DEFAULT_ONLY = (DEFAULT_QUEUE,)
_NO_TASK = 1 << 200  # greater than every ready key


def _best_key(source: tuple[QueueRecord, list[list[int]]]) -> int:
    best = source[0].ready.peek(source[1])
    return _NO_TASK if best is None else best
_PENDING = TaskStatus.PENDING
_LEASED = TaskStatus.LEASED
_COMPLETED = TaskStatus.COMPLETED


_UNANSWERED = enqueue.UNANSWERED


class QueueState:
    """The replicated task queue (docs/internals.md section 2).

    Args:
        config: Queue semantics until a ``configure`` command or a snapshot replaces them
            (settings are replicated state: docs/internals.md section 2).
        max_buffered_events: Bound on the events ``drain_events`` returns (the rest are
            counted in ``dropped_events``).
    """

    def __init__(self, config: QueueConfig | None = None,
                 max_buffered_events: int = MAX_BUFFERED_EVENTS) -> None:
        self.config = config if config is not None else QueueConfig()
        # Whether the command being applied needs its outcome (see apply).
        self._reply = True
        # Process-local, not replicated: kept by restore, absent from snapshots (events.py).
        self._events = EventLog(max_buffered_events)
        # Plain functions, not bound methods: a bound method held by the state would make a
        # reference cycle, and the Raft process freezes its long-lived objects for the
        # garbage collector (dqueue/node/gcpause.py), which then never frees a cycle.
        cls = QueueState
        self._handlers: dict[type, Callable[[QueueState, Any, int], Outcome]] = {
            commands.Enqueue: enqueue.enqueue, commands.Lease: cls._lease,
            commands.Ack: cls._ack, commands.AckBatch: cls._ack_batch,
            commands.Nack: cls._nack, commands.Extend: cls._extend,
            commands.Cancel: maintenance.cancel, commands.Redrive: maintenance.redrive,
            commands.Purge: maintenance.purge, commands.Tick: cls._tick,
            commands.Configure: maintenance.configure,
            queues.CreateQueue: queue_admin.create_queue,
            queues.UpdateQueue: queue_admin.update_queue,
            queues.DeleteQueue: queue_admin.delete_queue,
            queues.PurgeQueue: queue_admin.purge_queue,
            queues.MoveTasks: queue_admin.move_tasks,
            **SCHEDULE_HANDLERS, **RELEASE_HANDLERS, **rate_limits.HANDLERS, **WORKER_HANDLERS,
        }
        self._clear()

    def _clear(self) -> None:
        # Invariant: clock_ms only grows (max of every applied now_ms).
        self.clock_ms = 0
        # Invariant: strictly increasing; the index of the last applied command.
        self.last_index = 0
        self._next_seq = 0
        # Insertion order is seq order: tasks are inserted once, at enqueue.
        self._tasks: dict[str, Task] = {}
        # status -> type -> id -> task; a task is in exactly the dict of its status and type.
        self._by_status: dict[TaskStatus, dict[str, dict[str, Task]]] = {
            status: {} for status in TaskStatus}
        # name -> queue, in creation order; the default queue always exists (queue_admin.py).
        self._queues: dict[str, QueueRecord] = {
            DEFAULT_QUEUE: QueueRecord(DEFAULT_QUEUE, QueueSettings(), self.config, 0)}
        self._delayed: list[tuple[int, int, int, Task]] = []
        self._leases: list[tuple[int, int, int, Task]] = []
        self._finished: list[tuple[int, int, Task]] = []
        # key -> (task id, expires_at_ms); a key is live while expires_at_ms > clock_ms.
        self._dedup: dict[str, tuple[str, int]] = {}
        self._dedup_heap: list[tuple[int, str]] = []
        # Client sessions (sessions.py, Raft dissertation 6.3): first outcomes of the commands
        # applied in a session, so that a repeat is answered, never applied twice.
        self.sessions = Sessions()
        # Periodic schedules (schedule_admin.py): fired by apply when the clock passes a slot.
        self.schedules = ScheduleBook()
        # Type limits and the buckets of every limit (rate_limits.py), charged at lease time.
        self.rate_limits = rate_limits.RateLimitBook()
        # Workers seen by their heartbeats (workers.py): dropped when the clock passes expiry.
        self.workers = WorkerBook()

    # ------------------------------------------------------------------ apply

    def apply(self, command: commands.Command, index: int, reply: bool = True) -> Outcome | None:
        """Apply one committed command and return its plain outcome.

        Args:
            command: A command built by ``command_from_plain`` (or directly).
            index: The Raft log index of the entry; lease tokens derive from it.
            reply: False when nobody waits for the outcome (a member that does not answer the
                request): the state changes exactly as with True, but the frequent commands
                skip building the plain forms of their tasks, and None is returned.

        Raises:
            ValueError: if ``index`` does not increase (a bug in the caller, never bad input).
        """
        if index <= self.last_index:
            raise ValueError(f"index {index} applied after {self.last_index}")
        self.last_index = index
        if command.now_ms > self.clock_ms:
            self.clock_ms = command.now_ms
        self._advance()
        if self.schedules.due_ms <= self.clock_ms:
            fire_due(self)
        if self.workers.due_ms <= self.clock_ms:
            self.workers.expire(self.clock_ms)
        self._reply = reply
        outcome = self._handlers[type(command)](self, command, index)
        self._drop_stale_tops()
        return outcome if reply else None

    def _advance(self) -> None:
        """Bring every index up to ``clock_ms``: expire leases, reveal delayed tasks, prune."""
        clock_ms = self.clock_ms
        leases = self._leases
        while leases and leases[0][0] <= clock_ms:
            expires_at_ms, _, epoch, task = heappop(leases)
            if task.status is _LEASED and task.epoch == epoch:
                # DESIGN section 3: an expired lease is a failed attempt, timed at its expiry.
                events = self._events
                events.note(events.expired, QueueEvent.EXPIRED, task.id, task.type, task.queue)
                self._fail_attempt(task, expires_at_ms, LEASE_EXPIRED, False)
        delayed = self._delayed
        while delayed and delayed[0][0] <= clock_ms:
            _, _, epoch, task = heappop(delayed)
            if task.status is _PENDING and task.epoch == epoch:
                task.epoch += 1  # the epoch changes whenever a task enters an index
                record = self._queues[task.queue]
                # FIFO (fifo.py): only an unblocked group's head is ever ready; the next one
                # is indexed when a task of the group leaves it or stops holding a lease.
                if record.groups is None or record.groups.may_lease(task):
                    record.ready.push(task)
        finished = self._finished
        while finished and finished[0][0] <= clock_ms:
            _, seq, task = heappop(finished)
            self._maybe_prune(task, seq)
        dedup_heap = self._dedup_heap
        while dedup_heap and dedup_heap[0][0] <= clock_ms:
            _, key = heappop(dedup_heap)
            entry = self._dedup.get(key)
            if entry is not None and entry[1] <= clock_ms:
                del self._dedup[key]

    def _drop_stale_tops(self) -> None:
        """Pop stale heads so ``next_deadline_ms`` reads a live entry in O(1)."""
        leases = self._leases
        while leases and (leases[0][3].status is not _LEASED
                          or leases[0][3].epoch != leases[0][2]):
            heappop(leases)
        delayed = self._delayed
        while delayed and (delayed[0][3].status is not _PENDING
                           or delayed[0][3].epoch != delayed[0][2]):
            heappop(delayed)

    # ------------------------------------------------------------------ index upkeep

    def _set_status(self, task: Task, status: TaskStatus) -> None:
        # Empty member dicts are kept here (cheap churn) and dropped by _remove.
        by_status = self._by_status
        del by_status[task.status][task.type][task.id]
        members = by_status[status].get(task.type)
        if members is None:
            members = by_status[status][task.type] = {}
        members[task.id] = task
        counts = self._queues[task.queue].counts
        counts[task.status._value_] -= 1
        counts[status._value_] += 1
        task.status = status

    def _make_pending(self, task: Task) -> None:
        """Index a task that just became pending, as ready or as delayed."""
        task.epoch += 1
        record = self._queues[task.queue]
        if task.visible_at_ms > self.clock_ms:
            heappush(self._delayed, (task.visible_at_ms, task.seq, task.epoch, task))
        elif record.groups is None:
            record.ready.push(task)
        if record.groups is not None:
            # FIFO (fifo.py): this task, or the head it blocked while leased, may be leased.
            record.groups.offer(task.group, record.ready, self.clock_ms)

    def _finish(self, task: Task, status: TaskStatus) -> None:
        self._set_status(task, status)
        record = self._queues[task.queue]
        if record.groups is not None:
            self._fifo_leave(task, record)
        heappush(self._finished, (task.updated_at_ms + record.config.retention_ms, task.seq,
                                  task))

    def _fifo_leave(self, task: Task, record: QueueRecord) -> None:
        """Take a task out of its FIFO group; index the group's head if it may be leased."""
        assert record.groups is not None
        record.groups.leave(task)
        record.groups.offer(task.group, record.ready, self.clock_ms)

    def _rebuild_finished(self) -> None:
        """Prune times follow the retention in force of each task's queue, as restore
        computes them: rebuilt in seq order, so equal on a member that replayed and one that
        restored a snapshot (dedup expiries are stored with each key: they stay)."""
        records = self._queues
        self._finished = [(task.updated_at_ms + records[task.queue].config.retention_ms,
                           task.seq, task)
                          for task in self._tasks.values() if task.status in FINISHED]
        heapq.heapify(self._finished)

    def _move(self, task: Task, target: str, source_queue: str | None) -> None:
        """Move a pending or dead task to queue ``target`` as a new pending task, visible now,
        attempts reset (a dead letter moved to its queue's target, or a redrive of one).
        Invariant kept: a task is counted and indexed in exactly its own queue."""
        source = self._queues[task.queue]
        source.ready.discard(task)
        if source.groups is not None:
            self._fifo_leave(task, source)
        self._set_status(task, _PENDING)
        source.counts["pending"] -= 1
        record = self._queues[target]
        record.counts["pending"] += 1
        task.queue, task.source_queue = record.name, source_queue
        if record.groups is None:
            task.group = None
        else:
            record.groups.rejoin(task, record.ready)  # at its seq place (fifo.py)
        task.attempts = 0
        task.max_retries = record.config.max_retries
        task.updated_at_ms = task.visible_at_ms = self.clock_ms
        self._make_pending(task)

    def _maybe_prune(self, task: Task, seq: int) -> None:
        if (task.status not in FINISHED or self._tasks.get(task.id) is not task
                or task.updated_at_ms + self._queues[task.queue].config.retention_ms
                > self.clock_ms):
            return  # stale entry: redriven, purged, or finished again later
        key = task.idempotency_key
        if key is not None:
            entry = self._dedup.get(key)
            if entry is not None and entry[0] == task.id and entry[1] > self.clock_ms:
                # A live key must still answer with its task: keep it until the key expires.
                heappush(self._finished, (entry[1], seq, task))
                return
        self._remove(task)

    def _remove(self, task: Task) -> None:
        del self._tasks[task.id]
        del self._by_status[task.status][task.type][task.id]
        record = self._queues[task.queue]
        record.counts[task.status._value_] -= 1
        if record.groups is not None and task.status not in FINISHED:
            self._fifo_leave(task, record)  # purged or deleted while pending or leased
        # Drop the type's member dicts once it has no task at all: memory stays bounded even
        # when types come and go.
        groups = [by_type.get(task.type) for by_type in self._by_status.values()]
        if not any(groups):
            for by_type in self._by_status.values():
                by_type.pop(task.type, None)
        key = task.idempotency_key
        if key is not None:
            entry = self._dedup.get(key)
            if entry is not None and entry[0] == task.id:
                del self._dedup[key]

    def _fail_attempt(self, task: Task, at_ms: int, error: str | None, dead_letter: bool,
                      traceback: str | None = None, delay_ms: int | None = None) -> None:
        """End the current lease as a failed attempt: retry after backoff, or dead-letter.
        ``last_error`` and ``last_traceback`` describe this failure only (results.py).

        ``max_retries`` counts retries after the first attempt (as Celery's does): a task
        with ``max_retries`` r dies when attempt r + 1 fails. A dead task stays in its queue
        (status dead), or moves to the queue's dead-letter queue when it has one (SQS).
        """
        task.lease_worker = task.lease_token = task.lease_expires_at_ms = None
        task.last_error, task.last_traceback, task.updated_at_ms = error, traceback, at_ms
        record = self._queues[task.queue]
        if dead_letter or task.attempts > task.max_retries:
            events = self._events
            events.note(events.dead_lettered, QueueEvent.DEAD_LETTERED, task.id, task.type,
                        task.queue)
            target = record.settings.dead_letter_queue
            if target is not None and target in self._queues:
                self._move(task, target, task.queue)
            else:
                self._finish(task, TaskStatus.DEAD)
        else:
            # A nack's own delay (ctx.retry's countdown) replaces the queue's backoff.
            task.visible_at_ms = at_ms + (backoff_ms(record.config, task.id, task.attempts)
                                          if delay_ms is None else delay_ms)
            self._set_status(task, _PENDING)
            self._make_pending(task)

    # ------------------------------------------------------------------ handlers

    def _lease(self, cmd: commands.Lease, index: int) -> Outcome:
        if cmd.max_tasks > self.config.max_lease_tasks:
            return _fail("invalid", f"max_tasks: at most {self.config.max_lease_tasks}")
        if cmd.lease_ms is not None and cmd.lease_ms > self.config.max_lease_ms:
            return _fail("invalid", f"lease_ms: at most {self.config.max_lease_ms}")
        # Each named queue's own ready index: a lease never looks at another queue's tasks;
        # a queue or type whose rate limit has no budget is left out (rate_limits.py).
        names = _DEFAULT_ONLY if cmd.queues is None else tuple(dict.fromkeys(cmd.queues))
        sources = rate_limits.lease_sources(self, names, cmd.types)
        if isinstance(sources, str):
            return _fail(QUEUE_NOT_FOUND, f"queues: no queue {sources}")
        leased: list[dict[str, Any]] = []
        if not sources:
            return _ok({"tasks": leased})
        limited = rate_limits.limits_apply(self, sources)
        clock_ms = self.clock_ms
        record, heaps = sources[0]
        lease_ms = record.config.lease_ms if cmd.lease_ms is None else cmd.lease_ms
        expires_at_ms = clock_ms + lease_ms
        # The loop below is _set_status and the lease upkeep, inlined: it runs once per task.
        leases, counts = self._leases, self._events.leased
        pending, holders = self._by_status[_PENDING], self._by_status[_LEASED]
        worker_id = cmd.worker_id
        # Fencing: "<nonce>.<position>", unguessable, from the nonce the leader stamped into the
        # entry (the same on every member); an entry without one keeps "<index>.<position>".
        token_prefix = f"{index}." if cmd.nonce is None else f"{cmd.nonce}."
        reply = self._reply
        for position in range(cmd.max_tasks):
            if len(sources) > 1:
                # Across queues the best task wins (priority, then log order), as within one.
                record, heaps = min(sources, key=_best_key)
                lease_ms = record.config.lease_ms if cmd.lease_ms is None else cmd.lease_ms
                expires_at_ms = clock_ms + lease_ms
            task = record.ready.pop(heaps)
            if task is None:
                break
            queue_counts = record.counts
            queue_counts["pending"] -= 1
            queue_counts["leased"] += 1
            task_type, task_id = task.type, task.id
            del pending[task_type][task_id]
            members = holders.get(task_type)
            if members is None:
                members = holders[task_type] = {}
            members[task_id] = task
            task.status = _LEASED
            task.attempts += 1
            task.lease_worker = worker_id
            task.lease_token = token_prefix + str(position)
            task.lease_expires_at_ms = expires_at_ms
            task.updated_at_ms = clock_ms
            task.epoch = epoch = task.epoch + 1
            heappush(leases, (expires_at_ms, task.seq, epoch, task))
            if record.groups is not None:
                record.groups.note_lease(task)  # its group is blocked (fifo.py)
            count_key = (task_type, record.name)
            counts[count_key] = counts.get(count_key, 0) + 1
            if reply:
                leased.append(task.to_plain())
            if limited and self.rate_limits.charge(task, record, clock_ms):
                sources = rate_limits.lease_sources(self, names, cmd.types)  # a limit is spent
                if not sources:
                    break
                record, heaps = sources[0]
                lease_ms = record.config.lease_ms if cmd.lease_ms is None else cmd.lease_ms
                expires_at_ms = clock_ms + lease_ms
        return _ok({"tasks": leased})

    def _holder(self, task_id: str, worker_id: str, token: str | None) -> Task | Outcome:
        """Return the task if the caller holds its live lease, else the failure outcome.

        Holding is the worker id and the token; without a token only a legacy lease (no nonce).
        """
        task = self._tasks.get(task_id)
        if (task is not None and task.status is _LEASED and task.lease_worker == worker_id
                and (token == task.lease_token
                     or (token is None and is_legacy_token(task.lease_token)))):
            return task
        return self._not_held(task_id, task, worker_id)

    @staticmethod
    def _not_held(task_id: str, task: Task | None, worker_id: str) -> Outcome:
        if task is None:
            return _fail("not_found", f"id: no task {task_id}")
        return _fail("lease_conflict", f"id: worker {worker_id} does not hold the lease of "
                                       f"task {task_id}")

    def _ack(self, cmd: commands.Ack, index: int) -> Outcome:
        task = self._tasks.get(cmd.id)
        token = cmd.token
        # The holder check of _holder, inlined (this runs once per acked task).
        if task is not None and task.status is _LEASED and task.lease_worker == cmd.worker_id \
                and (token == task.lease_token
                     or (token is None and is_legacy_token(task.lease_token))):
            task.done_worker, task.done_token = task.lease_worker, task.lease_token
            task.lease_worker = task.lease_token = task.lease_expires_at_ms = None
            task.result = cmd.result
            task.updated_at_ms = clock_ms = self.clock_ms
            # _finish(task, COMPLETED), inlined: this runs once per acked task.
            task_type, task_id = task.type, task.id
            by_status = self._by_status
            del by_status[_LEASED][task_type][task_id]
            done = by_status[_COMPLETED]
            members = done.get(task_type)
            if members is None:
                members = done[task_type] = {}
            members[task_id] = task
            task.status = _COMPLETED
            record = self._queues[task.queue]
            queue_counts = record.counts
            queue_counts["leased"] -= 1
            queue_counts["completed"] += 1
            if record.groups is not None:
                self._fifo_leave(task, record)
            heappush(self._finished, (clock_ms + record.config.retention_ms, task.seq, task))
            counts, count_key = self._events.acked, (task_type, record.name)
            counts[count_key] = counts.get(count_key, 0) + 1
            if not self._reply:
                return _UNANSWERED
            return {"ok": True, "value": {"task": task.to_plain()}}
        if (task is not None and task.status is TaskStatus.COMPLETED
                and task.done_worker == cmd.worker_id
                and (token == task.done_token
                     or (token is None and is_legacy_token(task.done_token)))):
            return _ok({"task": task.to_plain()})  # repeat by the holder that completed it
        return self._not_held(cmd.id, task, cmd.worker_id)

    def _ack_batch(self, cmd: commands.AckBatch, index: int) -> Outcome:
        # Each item acts exactly as a lone ack at this index (the clock moved once, for all).
        ack = self._ack
        if not self._reply:
            for item in cmd.items:
                ack(item, index)
            return _UNANSWERED
        return _ok({"results": [ack(item, index) for item in cmd.items]})

    def _nack(self, cmd: commands.Nack, index: int) -> Outcome:
        held = self._holder(cmd.id, cmd.worker_id, cmd.token)
        if not isinstance(held, Task):
            return held
        counts, count_key = self._events.nacked, (held.type, held.queue)
        counts[count_key] = counts.get(count_key, 0) + 1
        self._fail_attempt(held, self.clock_ms, cmd.reason, cmd.dead_letter, cmd.traceback,
                           cmd.retry_delay_ms)
        if not self._reply:
            return _UNANSWERED
        return _ok({"task": held.to_plain()})

    def _extend(self, cmd: commands.Extend, index: int) -> Outcome:
        if cmd.lease_ms is not None and cmd.lease_ms > self.config.max_lease_ms:
            return _fail("invalid", f"lease_ms: at most {self.config.max_lease_ms}")
        held = self._holder(cmd.id, cmd.worker_id, cmd.token)
        if not isinstance(held, Task):
            return held
        lease_ms = (self._queues[held.queue].config.lease_ms if cmd.lease_ms is None
                    else cmd.lease_ms)
        held.lease_expires_at_ms = self.clock_ms + lease_ms
        held.updated_at_ms = self.clock_ms
        # A new epoch makes the entry of the previous expiry stale: one live entry per lease.
        held.epoch += 1
        heappush(self._leases, (held.lease_expires_at_ms, held.seq, held.epoch, held))
        return _ok({"task": held.to_plain()})

    def _tick(self, cmd: commands.Tick, index: int) -> Outcome:
        return _ok({})

    # ------------------------------------------------------------------ reads

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        """Return the plain form of a task, or None if there is none with that id."""
        task = self._tasks.get(task_id)
        return None if task is None else task.to_plain()

    def stats(self) -> dict[str, Any]:
        """Return counts by status, by type and status, by queue and status, and the clock."""
        result = reads.stats(self._by_status, self.clock_ms)
        result["by_queue"] = {name: dict(record.counts)
                              for name, record in sorted(self._queues.items())}
        return result

    def list_tasks(self, status: str, type: str | None = None, limit: int = 100,
                   cursor: str | None = None, queue: str | None = None) -> dict[str, Any]:
        """List tasks of one status (and type, and queue) in enqueue order, ``limit`` at a
        time: O(m log limit) for the m tasks of that status and type (not the hot path).

        Raises:
            commands.InvalidCommand: on a bad status, limit or cursor.
        """
        return reads.list_tasks(self._by_status, status, type, limit, cursor, queue)

    def list_queues(self, prefix: str | None = None) -> list[dict[str, Any]]:
        """Every queue (whose name starts with ``prefix``) with its settings and counts."""
        return queue_admin.list_queues(self, prefix)

    def get_queue(self, name: str) -> dict[str, Any] | None:
        """One queue's settings, counts by status and dead-letter sources, or None."""
        return queue_admin.get_queue(self, name)

    def has_visible(self, types: Iterable[str] | None, now_ms: int,
                    queues: Iterable[str] | None = None) -> bool:
        """Whether a lease of ``types`` (None: any) in ``queues`` (None: the default queue)
        applied at ``now_ms`` would get a task; also True when a queue does not exist, so that
        the lease is applied and refused (``queue_not_found``) instead of waiting."""
        return reads.state_has_visible(self, types, now_ms,
                                       _DEFAULT_ONLY if queues is None else tuple(queues))

    def next_deadline_ms(self) -> int | None:
        """Earliest lease expiry, delayed visibility, schedule slot, worker expiry or return
        of a spent rate limit's budget, or None when nothing waits on time."""
        return reads.next_deadline_ms(self)

    def event_counts(self) -> dict[str, dict[str, int]]:
        """Counts since this object was made, by event then task type (``QueueEvent``).

        Every event is a key, with ``{}`` until it happens. Counters only grow: they are not
        in snapshots and ``restore`` keeps them. O(types) per call.
        """
        return self._events.counts()

    def event_counts_by_queue(self) -> dict[str, dict[str, dict[str, int]]]:
        """The same counters by event, then queue, then task type. O(queues x types)."""
        return self._events.counts_by_queue()

    def drain_events(self) -> list[Event]:
        """Return, oldest first, the ``(event, task_id, type)`` of the expired and
        dead-lettered events since the last drain (at most ``max_buffered_events``)."""
        return self._events.drain()

    def dropped_events(self) -> int:
        """How many expired or dead-lettered events found the drain buffer full (only grows)."""
        return self._events.dropped

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """Return the whole state as bytes; equal histories give byte-identical snapshots."""
        return snapshot_codec.encode_state(self)

    def restore(self, data: bytes) -> None:
        """Replace the whole state by the one ``data`` (from ``snapshot``) describes.

        Raises:
            ValueError: if ``data`` is not a valid snapshot; the state is then unchanged.
        """
        decoded = snapshot_codec.decode(data)
        # The settings in force when the snapshot was taken (older snapshots carry none).
        config = self.config if decoded.settings is None else decoded.settings
        fresh = QueueState(config)
        snapshot_codec.load_into(fresh, decoded)
        self.adopt(fresh)

    def adopt(self, other: QueueState) -> None:
        """Take over the whole replicated state of ``other`` (restored from a snapshot, so the
        node need not decode the same snapshot twice), keeping this state's event counters.
        ``other`` must not be used afterwards: the two would share their tasks."""
        self.__dict__.update({k: v for k, v in other.__dict__.items()
                              if k not in ("_handlers", "_events")})
