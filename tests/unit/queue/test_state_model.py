"""Stateful property test: QueueState against the naive reference model, step by step.

Hypothesis drives random commands (including stale tokens, clocks that go backwards across a
leader change, settings changed by ``configure``, snapshot and restore) and requires equal
outcomes and equal reads after every step, plus the invariants of issue 3: one status per task,
at most one live lease per task, a completed task is never visible again, and only pruning or
purge removes a task. Every other command is applied in a client session (dissertation 6.3),
and a rule repeats an earlier one with its session: the repeat changes nothing (same snapshot
bytes) and is answered with the first outcome, or refused when below ``first_unanswered``; the
model never sees repeats. Named queues (issue 15): besides ``default``, the rules create,
change, delete, purge and move between ``jobs`` and ``dlq`` (each may name the other as its
dead-letter target), enqueue into and lease from them; the invariants add that a task is
counted in exactly its queue and each queue's ready index holds exactly its visible pending
tasks. A FIFO queue, ``o.fifo``, takes tasks in groups (and a stray group on a task of another
queue is refused); its ready index holds exactly the first task of each group with no leased
task, when that task is pending and visible. Rate limits (issue 17): rules set and remove limits
of types, and queues may have one as a setting; a lease takes only what the limits allow,
skipping a spent type's tasks for others, and ``has_visible`` and ``next_deadline_ms`` follow
the budget.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import dqueue.queue as dq
from dqueue.queue.queues import (
    CreateQueue,
    DeleteQueue,
    MoveTasks,
    PurgeQueue,
    QueueSettings,
    UpdateQueue,
)
from dqueue.queue.rate_limits import DeleteRateLimit, PutRateLimit, check_rate_limit
from dqueue.queue.ready import ready_key
from dqueue.queue.sessions import DUPLICATE_REQUEST, ClientSession, apply_once
from dqueue.queue.task import TaskStatus
from tests.depth import examples
from tests.unit.queue.queue_reference import FINISHED, STATUSES, ReferenceQueue

CONFIG = dq.QueueConfig(lease_ms=5_000, max_retries=2, backoff_base_ms=1_000, backoff_factor=2.0,
                     backoff_cap_ms=6_000, backoff_jitter=0.5, dedup_window_ms=8_000,
                     retention_ms=12_000, max_batch=4, max_lease_tasks=3)
TYPES = ["a", "b", "c"]
WORKERS = ["w1", "w2"]
FIFO = "o.fifo"
QUEUES = ["default", "jobs", "dlq", FIFO]
NAMED = ["jobs", "dlq", FIFO]  # the queues the rules create and delete
# A task's queue: mostly the default one, so the older rules keep their coverage.
TASK_QUEUES = st.sampled_from(["default", "default", "jobs", "dlq", FIFO])
LEASE_QUEUES = st.sampled_from([None, None, ("jobs",), ("default", "jobs"),
                                ("dlq", "jobs", "default"), ("missing",), (FIFO,),
                                (FIFO, "dlq")])
# A task's group: kept on a task of the FIFO queue, dropped elsewhere unless stray.
GROUPS = st.sampled_from([None, "g1", "g1", "g2"])
# Values of each setting the rules choose from (None: follow the cluster, or the default).
SETTING_VALUES: dict[str, list[Any]] = {
    "lease_ms": [None, 2_000, 30_000], "max_retries": [None, 0, 1],
    "backoff_base_ms": [None, 200, 3_000], "retention_ms": [None, 60_000],
    "delay_ms": [0, 1_500], "max_depth": [0, 2], "dead_letter_queue": [None, *QUEUES],
    "rate_limit": [None, None, "2/s", "30/s", "1/m"],
}
RATE_LIMITS = st.sampled_from(["1/s", "2/s", "30/s", "1/m", "7/h"])
settings_choices = st.fixed_dictionaries(
    {}, optional={name: st.sampled_from(values) for name, values in SETTING_VALUES.items()})
# Clock steps: repeats of the same ms, small steps, lease-length steps, and a clock behind.
STEPS = st.sampled_from([0, 0, 1, 700, 1_500, 5_000, 9_000, -2_000])

new_tasks = st.lists(st.tuples(st.sampled_from(TYPES), st.sampled_from([0, 1, 2]),
                               st.sampled_from([None, 0, 1, 3]),
                               st.sampled_from([None, None, "k1", "k2"]),
                               st.sampled_from([0, 0, 1, 2_000]),
                               st.sampled_from([None, {"n": 1}, [1, "x"]]), TASK_QUEUES,
                               GROUPS, st.sampled_from([False] * 9 + [True])),
                     min_size=1, max_size=4)


# An ack's result (None: none) and a nack's traceback (None: none), kept on the task.
RESULTS = st.sampled_from([None, None, {"rows": 3}, "ok", 0, [1, None]])
TRACEBACKS = st.sampled_from([None, "Traceback (most recent call last):\nValueError: boom"])


def check_outcome(command: Any, real: dict[str, Any], expected: dict[str, Any]) -> None:
    """The real outcome equals the model's on success; on failure the code matches."""
    if expected["ok"]:
        assert real == expected, (command, real, expected)
    else:
        assert not real["ok"] and real["code"] == expected["code"], (command, real)
        assert real["message"]


def first_of_free_group(task: Any, mine: list[Any]) -> bool:
    """Whether ``task`` is its group's oldest pending or leased task, none of them leased."""
    group = [t for t in mine if t.group == task.group
             and t.status in (TaskStatus.PENDING, TaskStatus.LEASED)]
    return (min(group, key=lambda t: t.seq) is task
            and all(t.status is TaskStatus.PENDING for t in group))


class QueueVersusModel(RuleBasedStateMachine):
    """Apply each command to both; compare outcomes, reads and invariants."""

    @initialize(jobs=settings_choices, dlq=st.sampled_from(["dlq", "dlq", None]),
                fifo=settings_choices)
    def start(self, jobs: dict[str, Any], dlq: str | None, fifo: dict[str, Any]) -> None:
        self.real = dq.QueueState(CONFIG)
        self.shadow = dq.QueueState(CONFIG)  # the same commands, never restored from a snapshot
        self.model = ReferenceQueue(CONFIG)
        self.index = 0
        self.now_ms = 1_000
        self.next_id = 0
        self.ids: list[str] = []
        self.tokens: list[tuple[str, str, str]] = []  # (task id, worker, token) ever granted
        self.completed: set[str] = set()
        self.seen: dict[str, dict[str, Any]] = {}
        self.purged: set[str] = set()
        self.retention_ms = CONFIG.retention_ms
        # Client sessions: (command, session, first outcome) of each command applied in one.
        self.in_session: list[tuple[Any, ClientSession, dict[str, Any]]] = []
        self.first_unanswered = 1
        self.session: ClientSession | None = None  # the session of the last step, if any
        # Most histories start with both named queues, "jobs" dead-lettering into "dlq".
        self.step(CreateQueue(name="dlq", now_ms=self.now_ms))
        self.step(CreateQueue(name="jobs", settings=QueueSettings(
            **{**jobs, "dead_letter_queue": dlq}), now_ms=self.now_ms))
        self.step(CreateQueue(name=FIFO, settings=QueueSettings(**fifo), now_ms=self.now_ms))

    def step(self, command: Any) -> dict[str, Any]:
        """Apply to both through the plain form (as the log does) and compare outcomes."""
        command = dq.command_from_plain(command.to_plain())
        self.index += 1
        # The retention this step prunes under: the one in force before it (a configure
        # switches settings after its own clock advance).
        self.retention_ms = self.model.config.retention_ms
        self.session = None
        if self.index % 2 == 0:
            seq = self.index
            self.first_unanswered = max(self.first_unanswered, seq - 6)
            self.session = ClientSession("n2.c", seq, self.first_unanswered)
            real = apply_once(self.real, command, self.index, self.session)
            assert apply_once(self.shadow, command, self.index, self.session) == real
            self.in_session.append((command, self.session, real))
        else:
            real = self.real.apply(command, self.index)
            assert self.shadow.apply(command, self.index) == real
        expected = self.model.apply(command, self.index)
        if isinstance(command, dq.AckBatch):
            assert real["ok"] and len(real["value"]["results"]) == len(command.items), real
            for item, got, want in zip(command.items, real["value"]["results"],
                                       expected["value"]["results"], strict=True):
                check_outcome(item, got, want)
        else:
            check_outcome(command, real, expected)
        return real

    def now(self, delta_ms: int) -> int:
        self.now_ms = max(0, self.now_ms + delta_ms)
        return self.now_ms

    @rule(delta=STEPS, specs=new_tasks, reuse=st.booleans())
    def enqueue(self, delta: int, specs: list[tuple[Any, ...]], reuse: bool) -> None:
        tasks = []
        for (task_type, priority, max_retries, key, delay_ms, payload, queue, group,
             stray) in specs:
            if reuse and self.ids:
                task_id = self.ids[self.next_id % len(self.ids)]  # may collide: all or nothing
            else:
                task_id = f"t{self.next_id}"
            self.next_id += 1
            tasks.append(dq.NewTask(id=task_id, type=task_type, payload=payload, priority=priority,
                                 max_retries=max_retries, idempotency_key=key,
                                 delay_ms=delay_ms, queue=queue,
                                 group=group if queue == FIFO or stray else None))
        outcome = self.step(dq.Enqueue(tasks=tuple(tasks), now_ms=self.now(delta)))
        if outcome["ok"]:
            for task, duplicate in zip(outcome["value"]["tasks"], outcome["value"]["duplicates"],
                                       strict=True):
                if task["id"] not in self.ids:
                    self.ids.append(task["id"])
                elif not duplicate:
                    # An id is reused only once its task is gone: pruned by this very command.
                    self.seen.pop(task["id"], None)
                    self.completed.discard(task["id"])
                    self.purged.discard(task["id"])

    @rule(delta=STEPS, worker=st.sampled_from(WORKERS),
          types=st.one_of(st.none(), st.lists(st.sampled_from(TYPES), min_size=1, max_size=3)),
          max_tasks=st.integers(1, 3), lease_ms=st.sampled_from([None, 1_000, 20_000]),
          nonce=st.one_of(st.none(), st.text("0123456789abcdef", min_size=32, max_size=32)),
          queues=LEASE_QUEUES)
    def lease(self, delta: int, worker: str, types: list[str] | None, max_tasks: int,
              lease_ms: int | None, nonce: str | None, queues: tuple[str, ...] | None) -> None:
        # nonce None: a lease of an old entry (legacy tokens); else as the leader stamps it.
        wanted = None if types is None else tuple(types)
        outcome = self.step(dq.Lease(worker_id=worker, types=wanted, max_tasks=max_tasks,
                                     lease_ms=lease_ms, nonce=nonce, queues=queues,
                                     now_ms=self.now(delta)))
        if not outcome["ok"]:
            assert outcome["code"] == "queue_not_found"
            return
        for task in outcome["value"]["tasks"]:
            assert task["id"] not in self.completed
            self.tokens.append((task["id"], worker, task["lease"]["token"]))

    def pick_holder(self, data: st.DataObject) -> tuple[str, str, str | None]:
        if self.tokens and data.draw(st.booleans()):
            task_id, worker, token = data.draw(st.sampled_from(self.tokens))
            if data.draw(st.booleans()):
                worker = data.draw(st.sampled_from(WORKERS))  # possibly the wrong worker
            # Its token, none, or a guess in the old "<index>.<position>" shape.
            return task_id, worker, data.draw(st.sampled_from([token, None, "1.0"]))
        task_id = data.draw(st.sampled_from([*self.ids, "missing"]))
        return task_id, data.draw(st.sampled_from(WORKERS)), None

    @rule(delta=STEPS, data=st.data(), result=RESULTS)
    def ack(self, delta: int, data: st.DataObject, result: Any) -> None:
        task_id, worker, token = self.pick_holder(data)
        outcome = self.step(dq.Ack(id=task_id, worker_id=worker, token=token, result=result,
                                now_ms=self.now(delta)))
        if outcome["ok"]:
            self.completed.add(task_id)

    @rule(delta=STEPS, data=st.data(), size=st.integers(1, 4))
    def ack_batch(self, delta: int, data: st.DataObject, size: int) -> None:
        now_ms = self.now(delta)
        items = tuple(dq.Ack(id=task_id, worker_id=worker, token=token,
                             result=data.draw(RESULTS), now_ms=now_ms)
                      for task_id, worker, token in
                      (self.pick_holder(data) for _ in range(size)))
        outcome = self.step(dq.AckBatch(items=items, now_ms=now_ms))
        for item, result in zip(items, outcome["value"]["results"], strict=True):
            if result["ok"]:
                self.completed.add(item.id)

    @rule(delta=STEPS, data=st.data(), dead=st.booleans(),
          reason=st.sampled_from([None, "boom"]), traceback=TRACEBACKS,
          delay=st.sampled_from([None, None, 0, 1, 250, 90_000]))
    def nack(self, delta: int, data: st.DataObject, dead: bool, reason: str | None,
             traceback: str | None, delay: int | None) -> None:
        task_id, worker, token = self.pick_holder(data)
        self.step(dq.Nack(id=task_id, worker_id=worker, token=token, reason=reason,
                          dead_letter=dead, traceback=traceback, retry_delay_ms=delay,
                          now_ms=self.now(delta)))

    @rule(delta=STEPS, queues=st.sampled_from([("jobs",), ("default",), (FIFO,)]),
          delay=st.sampled_from([0, 1, 40, 90_000]))
    def lease_and_retry(self, delta: int, queues: tuple[str, ...], delay: int) -> None:
        """A handler calling ``ctx.retry(countdown)``: a nack whose own delay replaces the
        queue's backoff (issue 17)."""
        now_ms = self.now(delta)
        outcome = self.step(dq.Lease(worker_id="w1", max_tasks=2, queues=queues,
                                     nonce=f"{self.index:032x}", now_ms=now_ms))
        for task in outcome["value"]["tasks"] if outcome["ok"] else ():
            self.step(dq.Nack(id=task["id"], worker_id="w1", token=task["lease"]["token"],
                              reason="Retry: countdown", retry_delay_ms=delay, now_ms=now_ms))

    @rule(delta=STEPS, queues=st.sampled_from([("jobs",), ("dlq", "jobs", "default"), (FIFO,)]),
          dead=st.sampled_from([False, False, True]))
    def lease_and_fail(self, delta: int, queues: tuple[str, ...], dead: bool) -> None:
        """A worker whose handler fails: what it leases it nacks at once, so retries run out
        and dead letters move to their queue's target."""
        now_ms = self.now(delta)
        outcome = self.step(dq.Lease(worker_id="w1", max_tasks=3, queues=queues,
                                     nonce=f"{self.index:032x}", now_ms=now_ms))
        if not outcome["ok"]:
            return
        for task in outcome["value"]["tasks"]:
            self.step(dq.Nack(id=task["id"], worker_id="w1", token=task["lease"]["token"],
                              reason="ValueError: failed", dead_letter=dead,
                              traceback='  File "h.py", line 1\nValueError: failed',
                              now_ms=now_ms))

    @rule(delta=STEPS, group=GROUPS, size=st.integers(2, 4),
          priorities=st.sampled_from([(0,), (0, 2)]))
    def enqueue_group(self, delta: int, group: str | None, size: int,
                      priorities: tuple[int, ...]) -> None:
        """Several tasks of one FIFO group at once (priorities do not reorder a group)."""
        tasks = []
        for position in range(size):
            tasks.append(dq.NewTask(id=f"t{self.next_id}", type=TYPES[position % 2],
                                    priority=priorities[position % len(priorities)],
                                    queue=FIFO, group=group))
            self.next_id += 1
        outcome = self.step(dq.Enqueue(tasks=tuple(tasks), now_ms=self.now(delta)))
        if outcome["ok"]:
            self.ids += [t["id"] for t in outcome["value"]["tasks"] if t["id"] not in self.ids]

    @rule(delta=STEPS, by_id=st.booleans(), lease_next=st.booleans())
    def kill_and_redrive_fifo(self, delta: int, by_id: bool, lease_next: bool) -> None:
        """A FIFO head dies, the next task of its group may be leased, the dead one comes back
        (by id, or its queue's dead letters, wherever its queue sent them)."""
        now_ms = self.now(delta)
        outcome = self.step(dq.Lease(worker_id="w2", max_tasks=1, queues=(FIFO,),
                                     nonce=f"{self.index:032x}", now_ms=now_ms))
        if not outcome["ok"] or not outcome["value"]["tasks"]:
            return
        [task] = outcome["value"]["tasks"]
        self.tokens.append((task["id"], "w2", task["lease"]["token"]))
        self.step(dq.Nack(id=task["id"], worker_id="w2", token=task["lease"]["token"],
                          dead_letter=True, now_ms=now_ms))
        if lease_next:
            self.lease(0, "w2", None, 2, None, f"{self.index:032x}", (FIFO,))
        self.step(dq.Redrive(id=task["id"], now_ms=now_ms) if by_id
                  else dq.Redrive(queue=FIFO, now_ms=now_ms))
        self.step(MoveTasks(source="dlq", max_tasks=5, now_ms=now_ms))

    @rule(delta=STEPS, data=st.data(), lease_ms=st.sampled_from([None, 500, 10_000]))
    def extend(self, delta: int, data: st.DataObject, lease_ms: int | None) -> None:
        task_id, worker, token = self.pick_holder(data)
        self.step(dq.Extend(id=task_id, worker_id=worker, token=token, lease_ms=lease_ms,
                         now_ms=self.now(delta)))

    @rule(delta=STEPS, data=st.data())
    def cancel(self, delta: int, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from([*self.ids, "missing"]))
        self.step(dq.Cancel(id=task_id, now_ms=self.now(delta)))

    @rule(delta=STEPS, data=st.data(), how=st.sampled_from(["id", "type", "all"]),
          queue=st.sampled_from([None, None, *QUEUES]))
    def redrive(self, delta: int, data: st.DataObject, how: str, queue: str | None) -> None:
        if how == "id":
            command = dq.Redrive(id=data.draw(st.sampled_from([*self.ids, "missing"])),
                              now_ms=self.now(delta))
        elif how == "type":
            command = dq.Redrive(type=data.draw(st.sampled_from(TYPES)), queue=queue,
                                 now_ms=self.now(delta))
        else:
            command = dq.Redrive(queue=queue, now_ms=self.now(delta))
        self.step(command)

    @rule(delta=STEPS, task_type=st.sampled_from([None, *TYPES]),
          queue=st.sampled_from([None, None, *QUEUES]))
    def purge(self, delta: int, task_type: str | None, queue: str | None) -> None:
        now_ms = self.now(delta)
        self.step(dq.Tick(now_ms=now_ms))  # expire and prune first, so `dead` is exact
        dead = {t["id"] for t in self.model.tasks if t["status"] == "dead"
                and (task_type is None or t["type"] == task_type)
                and (queue is None or t["queue"] == queue)}
        outcome = self.step(dq.Purge(type=task_type, queue=queue, now_ms=now_ms))
        if outcome["ok"]:
            assert outcome["value"]["count"] == len(dead)
            self.purged |= dead
        else:
            assert outcome["code"] == "queue_not_found" and queue not in self.model.queues

    # -------------------------------------------------------------- named queues

    @rule(delta=STEPS, name=st.sampled_from(NAMED), chosen=settings_choices)
    def create_queue(self, delta: int, name: str, chosen: dict[str, Any]) -> None:
        settings = QueueSettings(**chosen)
        self.step(CreateQueue(name=name, settings=settings, now_ms=self.now(delta)))

    @rule(delta=STEPS, name=st.sampled_from([*QUEUES, "missing"]),
          changes=settings_choices.filter(bool))
    def update_queue(self, delta: int, name: str, changes: dict[str, Any]) -> None:
        self.step(UpdateQueue(name=name, changes=tuple(sorted(changes.items())),
                                 now_ms=self.now(delta)))

    @rule(delta=STEPS, name=st.sampled_from([*QUEUES, "missing"]))
    def delete_queue(self, delta: int, name: str) -> None:
        now_ms = self.now(delta)
        self.step(dq.Tick(now_ms=now_ms))  # expire and prune first, so `gone` is exact
        gone = {t["id"] for t in self.model.tasks if t["queue"] == name}
        outcome = self.step(DeleteQueue(name=name, now_ms=now_ms))
        if outcome["ok"]:
            assert outcome["value"]["count"] == len(gone)
            self.purged |= gone
        else:
            assert name == "default" or name not in self.model.queues

    @rule(delta=STEPS, name=st.sampled_from([*QUEUES, "missing"]))
    def purge_queue(self, delta: int, name: str) -> None:
        now_ms = self.now(delta)
        self.step(dq.Tick(now_ms=now_ms))
        gone = {t["id"] for t in self.model.tasks
                if t["queue"] == name and t["status"] in ("pending", "leased", "dead")}
        outcome = self.step(PurgeQueue(name=name, now_ms=now_ms))
        if outcome["ok"]:
            assert outcome["value"]["count"] == len(gone)
            self.purged |= gone

    @rule(delta=STEPS, source=st.sampled_from(QUEUES),
          destination=st.sampled_from([None, None, *QUEUES]), max_tasks=st.sampled_from([1, 50]))
    def move_tasks(self, delta: int, source: str, destination: str | None,
                   max_tasks: int) -> None:
        self.step(MoveTasks(source=source, destination=destination, max_tasks=max_tasks,
                               now_ms=self.now(delta)))

    @rule(delta=STEPS, task_type=st.sampled_from(TYPES), limit=RATE_LIMITS)
    def put_rate_limit(self, delta: int, task_type: str, limit: str) -> None:
        self.step(PutRateLimit(type=task_type, rate_limit=check_rate_limit(limit, "rate_limit"),
                               now_ms=self.now(delta)))

    @rule(delta=STEPS, task_type=st.sampled_from(TYPES))
    def delete_rate_limit(self, delta: int, task_type: str) -> None:
        self.step(DeleteRateLimit(type=task_type, now_ms=self.now(delta)))

    @rule(delta=STEPS)
    def tick(self, delta: int) -> None:
        self.step(dq.Tick(now_ms=self.now(delta)))

    @rule(delta=STEPS, lease_ms=st.sampled_from([2_000, 5_000, 20_000]),
          max_retries=st.sampled_from([0, 2, 4]), backoff_base_ms=st.sampled_from([500, 1_000]),
          dedup_window_ms=st.sampled_from([2_000, 8_000]),
          retention_ms=st.sampled_from([3_000, 12_000, 40_000]), unstamped=st.booleans(),
          max_depth=st.sampled_from([0, 0, 2, 5]))
    def configure(self, delta: int, lease_ms: int, max_retries: int, backoff_base_ms: int,
                  dedup_window_ms: int, retention_ms: int, unstamped: bool,
                  max_depth: int) -> None:
        """A new leader's settings (replicated state); unstamped as the node proposes them, or
        stamped."""
        settings = dataclasses.replace(CONFIG, lease_ms=lease_ms, max_retries=max_retries,
                                       backoff_base_ms=backoff_base_ms,
                                       dedup_window_ms=dedup_window_ms, retention_ms=retention_ms,
                                       max_depth=max_depth)
        now_ms = 0 if unstamped else self.now(delta)
        assert self.step(dq.Configure(settings=settings, now_ms=now_ms)) == {"ok": True,
                                                                            "value": {}}

    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        """A command applied in a session, proposed again (a forward re-sent to a new leader):
        nothing changes, and the answer is the first outcome (or a refusal once the client
        has its answer)."""
        if not self.in_session:
            return
        command, session, first = data.draw(st.sampled_from(self.in_session))
        before = self.real.snapshot()
        self.index += 1
        outcome = apply_once(self.real, command, self.index, session)
        assert apply_once(self.shadow, command, self.index, session) == outcome
        if session.seq < self.first_unanswered:
            assert (outcome["ok"], outcome["code"]) == (False, DUPLICATE_REQUEST)
        else:
            assert outcome == first
        assert self.real.snapshot() == before

    @rule()
    def snapshot_and_restore(self) -> None:
        data = self.real.snapshot()
        restored = dq.QueueState(CONFIG)
        restored.restore(data)
        assert restored.snapshot() == data
        self.real = restored

    # -------------------------------------------------------------- reads and invariants

    @invariant()
    def reads_agree(self) -> None:
        if not hasattr(self, "real"):
            return
        # Same history, same bytes, whether or not `real` went through snapshot and restore.
        assert self.real.snapshot() == self.shadow.snapshot()
        assert self.real.stats() == self.model.stats()
        for task_id in self.ids:
            assert self.real.get_task(task_id) == self.model.get_task(task_id)
        for status in STATUSES:
            for task_type in (None, "a"):
                listed, cursor = [], None
                while True:
                    page = self.real.list_tasks(status, task_type, limit=2, cursor=cursor)
                    listed += page["tasks"]
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
                assert listed == self.model.list_all(status, task_type)
            for queue in NAMED:
                page = self.real.list_tasks(status, None, limit=1_000, queue=queue)
                assert page["tasks"] == self.model.list_all(status, None, queue)
        for name in (*QUEUES, "missing"):
            assert self.real.get_queue(name) == self.model.get_queue(name)
        assert self.real.next_deadline_ms() == self.model.next_deadline_ms()
        for types, names in ((None, None), (["a"], None), (["b", "c"], None),
                             (None, ["jobs", "dlq"]), (["a"], ["dlq", "missing"]),
                             (None, [FIFO]), (["b"], [FIFO, "jobs"])):
            for ahead_ms in (0, 2_500):
                at_ms = self.model.clock + ahead_ms
                assert (self.real.has_visible(types, at_ms, names)
                        == self.model.has_visible(types, at_ms, names)), (types, names, at_ms)

    @invariant()
    def task_invariants(self) -> None:
        if not hasattr(self, "real"):
            return
        homes: dict[str, TaskStatus] = {}
        for status, by_type in self.real._by_status.items():
            for members in by_type.values():
                for task_id, task in members.items():
                    assert task_id not in homes, "a task is in two statuses"
                    assert task.status is status
                    homes[task_id] = status
        assert set(homes) == set(self.real._tasks)
        for state in (self.real, self.shadow):
            assert all(task.queue in state._queues for task in state._tasks.values())
            for name, record in state._queues.items():
                mine = [task for task in state._tasks.values() if task.queue == name]
                recount = {s: sum(task.status.value == s for task in mine) for s in STATUSES}
                assert record.counts == recount, name
                visible = {ready_key(task): task for task in mine
                           if task.status is TaskStatus.PENDING
                           and task.visible_at_ms <= state.clock_ms
                           and (record.groups is None or first_of_free_group(task, mine))}
                ready = record.ready
                assert ready.tasks == visible, name
                for task_type, heap in ready.by_type.items():
                    live = {key for key in heap if key in visible}
                    assert live == {k for k, t in visible.items() if t.type == task_type}
                assert set(visible) <= set(ready.all)
        live_leases: dict[str, int] = {}
        for expires_at_ms, _, epoch, task in self.real._leases:
            if task.status is TaskStatus.LEASED and task.epoch == epoch:
                assert expires_at_ms == task.lease_expires_at_ms
                live_leases[task.id] = live_leases.get(task.id, 0) + 1
        for task_id, task in self.real._tasks.items():
            leased = task.status is TaskStatus.LEASED
            assert (task.lease_token is not None) == leased
            assert live_leases.get(task_id, 0) == (1 if leased else 0)
        clock_ms = self.real.clock_ms
        for task_id in self.ids:
            now = self.real.get_task(task_id)
            before = self.seen.get(task_id)
            if task_id in self.completed and now is not None:
                assert now["status"] == "completed", "a completed task came back"
            if now is None and before is not None:
                # Finished long enough, or a lease that expired, dead-lettered the task (its
                # retries spent) and was retained long enough, all within this one step.
                lease = before.get("lease")
                finished_at = (before["updated_at_ms"] if before["status"] in FINISHED else
                               lease["expires_at_ms"] if before["status"] == "leased" else None)
                pruned = (finished_at is not None
                          and finished_at + self.retention_ms <= clock_ms)
                assert pruned or task_id in self.purged, f"{task_id} disappeared"
            if now is not None:
                self.seen[task_id] = now
            else:  # gone: its id may be enqueued again as a new task
                self.seen.pop(task_id, None)
                self.completed.discard(task_id)
                self.purged.discard(task_id)


TestQueueVersusModel = QueueVersusModel.TestCase
TestQueueVersusModel.settings = settings(
    max_examples=examples(60), stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
