"""A deliberately naive model of the queue rules: a list of task dicts and loops.

It shares nothing with ``dqueue.queue.state`` except the backoff formula and the command
classes (``QueueSettings`` among them), and is slow on purpose: every rule is written the most
obvious way, so that the stateful test can compare the indexed implementation against it step
by step. Named queues are a dict of settings; a task names its queue; every count is a recount.
A FIFO queue (a name ending in ``.fifo``) leases a task only when it is the first pending or
leased task of its group in the task list (which is enqueue order) and none of its group is
leased: a scan, not the groups of ``dqueue.queue.fifo``.
Rate limits are leaky buckets in exact fractions (a content that drains one per ms, and the
time it was last filled), not the integer GCRA of ``dqueue.queue.rate_limits``: the two forms
grant the same leases.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from fractions import Fraction
from typing import Any

from dqueue.queue import commands, queues, rate_limits
from dqueue.queue.backoff import backoff_ms
from dqueue.queue.config import QueueConfig
from dqueue.queue.fields import FIFO_DEDUP_WINDOW_MS
from dqueue.queue.queues import QueueSettings

STATUSES = ["pending", "leased", "completed", "dead", "cancelled"]
FINISHED = ("completed", "dead", "cancelled")
DEFAULT = "default"
# Settings that may be None (follow the cluster); the others go back to their default.
OPTIONAL = ("lease_ms", "max_retries", "backoff_base_ms", "backoff_cap_ms", "retention_ms",
            "dead_letter_queue", "rate_limit")
UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000}


def _ok(value: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "value": value}


def _err(code: str) -> dict[str, Any]:
    return {"ok": False, "code": code}


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class ReferenceQueue:
    """Naive queue: ``tasks`` in enqueue order, ``keys`` a dict key -> [task id, expires],
    ``queues`` a dict name -> {"settings", "created_at_ms", "updated_at_ms"} in creation
    order."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.clock = 0
        self.queues: dict[str, dict[str, Any]] = {
            DEFAULT: {"settings": QueueSettings(), "created_at_ms": 0, "updated_at_ms": 0}}
        self.tasks: list[dict[str, Any]] = []
        self.keys: dict[str, list[Any]] = {}
        # Hidden per task: who completed it, with which token.
        self.done: dict[str, tuple[str, str]] = {}
        # Tokens of leases applied without a nonce (old entries): only those may be held by
        # worker id alone.
        self.legacy_tokens: set[str] = set()
        self.next_seq = 0  # the enqueue order number of the next new task
        self.type_limits: dict[str, str] = {}  # type -> "N/u"
        # (kind, name) -> [limit text, content in ms, last time filled]
        self.buckets: dict[tuple[str, str], list[Any]] = {}

    @staticmethod
    def is_fifo(queue: str) -> bool:
        return queue.endswith(".fifo")

    def find(self, task_id: str) -> dict[str, Any] | None:
        for task in self.tasks:
            if task["id"] == task_id:
                return task
        return None

    def plain(self, task: dict[str, Any]) -> dict[str, Any]:
        """The task as reads show it: its group and seq only when it has a group."""
        shown = copy.deepcopy({k: v for k, v in task.items() if k not in ("group", "seq")})
        if task["group"] is not None:
            shown["group"], shown["seq"] = task["group"], task["seq"]
        return shown

    def leasable(self, task: dict[str, Any]) -> bool:
        """Pending and visible, and in a FIFO queue the first live task of an unheld group."""
        if task["status"] != "pending" or task["visible_at_ms"] > self.clock:
            return False
        if not self.is_fifo(task["queue"]):
            return True
        group = [t for t in self.tasks if t["queue"] == task["queue"]
                 and t["group"] == task["group"] and t["status"] in ("pending", "leased")]
        return group[0] is task and all(t["status"] == "pending" for t in group)

    # -------------------------------------------------------------- rate limits

    @staticmethod
    def interval_and_tolerance(text: str) -> tuple[Fraction, Fraction]:
        count, unit = text.split("/")
        interval = Fraction(UNIT_MS[unit], int(count))
        return interval, max(interval, Fraction(rate_limits.BURST_MS))

    def limits_of(self, task: dict[str, Any]) -> list[tuple[tuple[str, str], str]]:
        found = []
        if task["type"] in self.type_limits:
            found.append((("type", task["type"]), self.type_limits[task["type"]]))
        own = self.queues[task["queue"]]["settings"].rate_limit
        if own is not None:
            found.append((("queue", task["queue"]), own))
        return found

    def content(self, key: tuple[str, str], text: str) -> Fraction:
        """What the bucket holds now (0 for a new bucket or one of another limit)."""
        bucket = self.buckets.get(key)
        if bucket is None or bucket[0] != text:
            return Fraction(0)
        return max(Fraction(0), bucket[1] - (self.clock - bucket[2]))

    def conforms(self, task: dict[str, Any]) -> bool:
        return all(self.content(key, text) <= self.interval_and_tolerance(text)[1]
                   for key, text in self.limits_of(task))

    def fill(self, task: dict[str, Any]) -> None:
        for key, text in self.limits_of(task):
            content = self.content(key, text)
            self.buckets[key] = [text, content + self.interval_and_tolerance(text)[0],
                                 self.clock]

    def do_putratelimit(self, cmd: Any, index: int) -> dict[str, Any]:
        created = cmd.type not in self.type_limits
        self.type_limits[cmd.type] = cmd.rate_limit.text
        return _ok({"created": created, "type": cmd.type, "rate_limit": cmd.rate_limit.text})

    def do_deleteratelimit(self, cmd: Any, index: int) -> dict[str, Any]:
        if cmd.type not in self.type_limits:
            return _err("not_found")
        del self.type_limits[cmd.type]
        self.buckets.pop(("type", cmd.type), None)
        return _ok({"deleted": cmd.type})

    def budget_times(self) -> list[int]:
        """When each limit in force that has no budget now has some again."""
        times = []
        for (kind, name), (text, content, filled) in self.buckets.items():
            if kind == "type":
                live = self.type_limits.get(name) == text
            else:
                live = (name in self.queues
                        and self.queues[name]["settings"].rate_limit == text)
            tolerance = self.interval_and_tolerance(text)[1]
            if live and self.content((kind, name), text) > tolerance:
                times.append(math.ceil(filled + content - tolerance))
        return times

    # -------------------------------------------------------------- queue settings

    def setting(self, queue: str, name: str) -> Any:
        """A queue's own value of a cluster setting, else the cluster's."""
        own = getattr(self.queues[queue]["settings"], name)
        if own is None:
            return getattr(self.config, name)
        if name == "lease_ms":
            return min(own, self.config.max_lease_ms)
        return own

    def queue_config(self, queue: str) -> QueueConfig:
        """The cluster's config with the queue's backoff choices (for ``backoff_ms``)."""
        return dataclasses.replace(self.config,
                                   backoff_base_ms=self.setting(queue, "backoff_base_ms"),
                                   backoff_cap_ms=self.setting(queue, "backoff_cap_ms"))

    def counts(self, queue: str) -> dict[str, int]:
        found = {s: 0 for s in STATUSES}
        for task in self.tasks:
            if task["queue"] == queue:
                found[task["status"]] += 1
        return found

    def queue_plain(self, name: str) -> dict[str, Any]:
        entry = self.queues[name]
        return {"name": name, "settings": entry["settings"].to_plain(),
                "created_at_ms": entry["created_at_ms"],
                "updated_at_ms": entry["updated_at_ms"], "counts": self.counts(name)}

    def key_owner(self, key: str) -> dict[str, Any] | None:
        entry = self.keys.get(key)
        if entry is None or entry[1] <= self.clock:
            return None
        return self.find(entry[0])

    # -------------------------------------------------------------- time

    def fail(self, task: dict[str, Any], at_ms: int, error: str | None, dead: bool,
             traceback: str | None = None, delay_ms: int | None = None) -> None:
        task["lease"] = None
        task["last_error"] = error
        # The traceback of this failure only (a lease expiry has none): absent when None, as in
        # the real task's plain form.
        task.pop("last_traceback", None)
        if traceback is not None:
            task["last_traceback"] = traceback
        task["updated_at_ms"] = at_ms
        # max_retries counts retries after the first attempt: attempt max_retries + 1 is the
        # last one.
        if dead or task["attempts"] == task["max_retries"] + 1:
            target = self.queues[task["queue"]]["settings"].dead_letter_queue
            if target is not None and target in self.queues:
                self.move(task, target, task["queue"])
            else:
                task["status"] = "dead"
        else:
            task["status"] = "pending"
            # A nack's own delay, when it gives one, instead of the queue's backoff.
            if delay_ms is None:
                delay_ms = backoff_ms(self.queue_config(task["queue"]), task["id"],
                                      task["attempts"])
            task["visible_at_ms"] = at_ms + delay_ms

    def move(self, task: dict[str, Any], target: str, source: str | None) -> None:
        """The task starts again in queue ``target``: pending, visible now, no attempts."""
        task["status"] = "pending"
        task["queue"] = target
        task["source_queue"] = source
        if not self.is_fifo(target):
            task["group"] = None
        task["attempts"] = 0
        task["max_retries"] = self.setting(target, "max_retries")
        task["updated_at_ms"] = self.clock
        task["visible_at_ms"] = self.clock

    def advance(self) -> None:
        for task in self.tasks:
            if task["status"] == "leased" and task["lease"]["expires_at_ms"] <= self.clock:
                self.fail(task, task["lease"]["expires_at_ms"], "lease expired", False)
        keep = []
        for task in self.tasks:
            old = (task["status"] in FINISHED
                   and task["updated_at_ms"] + self.setting(task["queue"], "retention_ms")
                   <= self.clock)
            key = task["idempotency_key"]
            if old and key is not None and self.key_owner(key) is task:
                old = False
            if not old:
                keep.append(task)
        self.tasks = keep
        for key in list(self.keys):
            if self.keys[key][1] <= self.clock:
                del self.keys[key]

    # -------------------------------------------------------------- commands

    def apply(self, cmd: Any, index: int) -> dict[str, Any]:
        self.clock = max(self.clock, cmd.now_ms)
        self.advance()
        name = type(cmd).__name__.lower()
        return getattr(self, "do_" + name)(cmd, index)

    def do_tick(self, cmd: commands.Tick, index: int) -> dict[str, Any]:
        return _ok({})

    def do_configure(self, cmd: commands.Configure, index: int) -> dict[str, Any]:
        # Everything reads self.config when it needs a setting: later commands and every
        # finished task's prune time follow the new settings; stored dedup expiries stay.
        self.config = cmd.settings
        return _ok({})

    def do_enqueue(self, cmd: commands.Enqueue, index: int) -> dict[str, Any]:
        for new in cmd.tasks:
            if new.queue not in self.queues:
                return _err("queue_not_found")
            if new.group is not None and not self.is_fifo(new.queue):
                return _err("invalid")
        saved = (copy.deepcopy(self.tasks), copy.deepcopy(self.keys), self.next_seq)
        tasks, duplicates = [], []
        for new in cmd.tasks:
            owner = None if new.idempotency_key is None else self.key_owner(new.idempotency_key)
            retries = (self.setting(new.queue, "max_retries") if new.max_retries is None
                       else new.max_retries)
            if owner is not None:
                if not (owner["type"] == new.type and owner["priority"] == new.priority
                        and owner["max_retries"] == retries and owner["queue"] == new.queue
                        and _same(owner["payload"], new.payload)):
                    self.tasks, self.keys, self.next_seq = saved
                    return _err("idempotency_key_reused")
                tasks.append(self.plain(owner))
                duplicates.append(True)
                continue
            if self.find(new.id) is not None:
                self.tasks, self.keys, self.next_seq = saved
                return _err("invalid")
            delay_ms = (self.queues[new.queue]["settings"].delay_ms if new.delay_ms is None
                        else new.delay_ms)
            task = {"id": new.id, "type": new.type, "payload": new.payload,
                    "priority": new.priority, "max_retries": retries,
                    "attempts": 0, "status": "pending", "idempotency_key": new.idempotency_key,
                    "created_at_ms": self.clock, "updated_at_ms": self.clock,
                    "visible_at_ms": self.clock + delay_ms, "lease": None,
                    "last_error": None, "queue": new.queue, "source_queue": None,
                    "group": new.group, "seq": self.next_seq}
            self.next_seq += 1
            self.tasks.append(task)
            if new.idempotency_key is not None:
                window_ms = (FIFO_DEDUP_WINDOW_MS if self.is_fifo(new.queue)
                             else self.config.dedup_window_ms)
                self.keys[new.idempotency_key] = [new.id, self.clock + window_ms]
            tasks.append(self.plain(task))
            duplicates.append(False)
        if False in duplicates:
            depth = len([t for t in self.tasks if t["status"] in ("pending", "leased")])
            full = bool(self.config.max_depth) and depth > self.config.max_depth
            for name, entry in self.queues.items():
                bound = entry["settings"].max_depth
                added = [new for new, dup in zip(cmd.tasks, duplicates, strict=True)
                         if not dup and new.queue == name]
                in_queue = [t for t in self.tasks if t["queue"] == name
                            and t["status"] in ("pending", "leased")]
                if bound and added and len(in_queue) > bound:
                    full = True
            if full:
                self.tasks, self.keys, self.next_seq = saved
                return _err("queue_full")
        return _ok({"tasks": tasks, "duplicates": duplicates})

    def do_lease(self, cmd: commands.Lease, index: int) -> dict[str, Any]:
        names = [DEFAULT] if cmd.queues is None else list(cmd.queues)
        for name in names:
            if name not in self.queues:
                return _err("queue_not_found")
        # Computed before any is leased: a FIFO group offers at most its first task.
        visible = [t for t in self.tasks
                   if t["queue"] in names and self.leasable(t)
                   and (cmd.types is None or t["type"] in cmd.types)]
        # Stable sort: equal priorities keep enqueue (log) order.
        visible.sort(key=lambda t: -t["priority"])
        out: list[dict[str, Any]] = []
        for task in visible:
            if len(out) == cmd.max_tasks:
                break
            if not self.conforms(task):
                continue  # its type or its queue has no budget: the next one may
            self.fill(task)
            position = len(out)
            task["status"] = "leased"
            task["attempts"] += 1
            task["updated_at_ms"] = self.clock
            if cmd.nonce is None:
                token = f"{index}.{position}"
                self.legacy_tokens.add(token)
            else:
                token = f"{cmd.nonce}.{position}"
            lease_ms = (self.setting(task["queue"], "lease_ms") if cmd.lease_ms is None
                        else cmd.lease_ms)
            task["lease"] = {"worker_id": cmd.worker_id, "token": token,
                             "expires_at_ms": self.clock + lease_ms}
            out.append(self.plain(task))
        return _ok({"tasks": out})

    def matches(self, held: str, token: str | None) -> bool:
        """The token ``held`` is presented: given and equal, or absent for a legacy lease."""
        return token == held or (token is None and held in self.legacy_tokens)

    def holds(self, task: dict[str, Any], worker_id: str, token: str | None) -> bool:
        return (task["status"] == "leased" and task["lease"]["worker_id"] == worker_id
                and self.matches(task["lease"]["token"], token))

    def do_ack(self, cmd: commands.Ack, index: int) -> dict[str, Any]:
        task = self.find(cmd.id)
        if task is None:
            return _err("not_found")
        if task["status"] == "completed":
            worker, token = self.done[cmd.id]
            if worker == cmd.worker_id and self.matches(token, cmd.token):
                return _ok({"task": self.plain(task)})
            return _err("lease_conflict")
        if not self.holds(task, cmd.worker_id, cmd.token):
            return _err("lease_conflict")
        self.done[cmd.id] = (task["lease"]["worker_id"], task["lease"]["token"])
        task["lease"] = None
        task["status"] = "completed"
        task["updated_at_ms"] = self.clock
        if cmd.result is not None:  # the handler's return value, kept on the completed task
            task["result"] = cmd.result
        return _ok({"task": self.plain(task)})

    def do_ackbatch(self, cmd: commands.AckBatch, index: int) -> dict[str, Any]:
        return _ok({"results": [self.do_ack(item, index) for item in cmd.items]})

    def held(self, cmd: commands.Nack | commands.Extend) -> tuple[Any, Any]:
        """(task, None) if the caller holds the task's lease, else (None, error outcome)."""
        task = self.find(cmd.id)
        if task is None:
            return None, _err("not_found")
        if not self.holds(task, cmd.worker_id, cmd.token):
            return None, _err("lease_conflict")
        return task, None

    def do_nack(self, cmd: commands.Nack, index: int) -> dict[str, Any]:
        task, error = self.held(cmd)
        if error:
            return error
        self.fail(task, self.clock, cmd.reason, cmd.dead_letter, cmd.traceback,
                  cmd.retry_delay_ms)
        return _ok({"task": self.plain(task)})

    def do_extend(self, cmd: commands.Extend, index: int) -> dict[str, Any]:
        task, error = self.held(cmd)
        if error:
            return error
        lease_ms = (self.setting(task["queue"], "lease_ms") if cmd.lease_ms is None
                    else cmd.lease_ms)
        task["lease"]["expires_at_ms"] = self.clock + lease_ms
        task["updated_at_ms"] = self.clock
        return _ok({"task": self.plain(task)})

    def do_cancel(self, cmd: commands.Cancel, index: int) -> dict[str, Any]:
        task = self.find(cmd.id)
        if task is None:
            return _err("not_found")
        if task["status"] != "pending":
            return _err("invalid_state")
        task["status"] = "cancelled"
        task["updated_at_ms"] = self.clock
        return _ok({"task": self.plain(task)})

    def do_redrive(self, cmd: commands.Redrive, index: int) -> dict[str, Any]:
        if cmd.id is not None:
            task = self.find(cmd.id)
            if task is None:
                return _err("not_found")
            if task["status"] != "dead":
                return _err("invalid_state")
            targets = [task]
        else:
            if cmd.queue is not None and cmd.queue not in self.queues:
                return _err("queue_not_found")
            targets = [t for t in self.tasks if t["status"] == "dead"
                       and (cmd.type is None or t["type"] == cmd.type)
                       and (cmd.queue is None or t["queue"] == cmd.queue)]
        for task in targets:
            task["status"] = "pending"
            task["attempts"] = 0
            task["updated_at_ms"] = self.clock
            task["visible_at_ms"] = self.clock
        return _ok({"count": len(targets)})

    def do_purge(self, cmd: commands.Purge, index: int) -> dict[str, Any]:
        if cmd.queue is not None and cmd.queue not in self.queues:
            return _err("queue_not_found")
        gone = [t for t in self.tasks if t["status"] == "dead"
                and (cmd.type is None or t["type"] == cmd.type)
                and (cmd.queue is None or t["queue"] == cmd.queue)]
        self.forget(gone)
        return _ok({"count": len(gone)})

    def forget(self, gone: list[dict[str, Any]]) -> None:
        """Remove tasks, and the idempotency keys that name them."""
        self.tasks = [t for t in self.tasks if all(t is not g for g in gone)]
        for task in gone:
            key = task["idempotency_key"]
            if key is not None and key in self.keys and self.keys[key][0] == task["id"]:
                del self.keys[key]

    # -------------------------------------------------------------- queue commands

    def check_target(self, name: str, settings: QueueSettings) -> dict[str, Any] | None:
        target = settings.dead_letter_queue
        if target is None:
            return None
        if target == name:
            return _err("invalid")
        if target not in self.queues:
            return _err("queue_not_found")
        return None

    def do_createqueue(self, cmd: queues.CreateQueue, index: int) -> dict[str, Any]:
        if cmd.name in self.queues:
            if self.queues[cmd.name]["settings"] == cmd.settings:
                return _ok({"queue": self.queue_plain(cmd.name), "created": False})
            return _err("queue_exists")
        refused = self.check_target(cmd.name, cmd.settings)
        if refused is not None:
            return refused
        self.queues[cmd.name] = {"settings": cmd.settings, "created_at_ms": self.clock,
                                 "updated_at_ms": self.clock}
        return _ok({"queue": self.queue_plain(cmd.name), "created": True})

    def do_updatequeue(self, cmd: queues.UpdateQueue, index: int) -> dict[str, Any]:
        if cmd.name not in self.queues:
            return _err("queue_not_found")
        entry = self.queues[cmd.name]
        defaults = QueueSettings()
        values = {}
        for key, value in cmd.changes:
            if value is None and key not in OPTIONAL:
                value = getattr(defaults, key)
            values[key] = value
        settings = dataclasses.replace(entry["settings"], **values)
        if (settings.backoff_base_ms is not None and settings.backoff_cap_ms is not None
                and settings.backoff_base_ms > settings.backoff_cap_ms):
            return _err("invalid")
        refused = self.check_target(cmd.name, settings)
        if refused is not None:
            return refused
        entry["settings"] = settings
        entry["updated_at_ms"] = self.clock
        return _ok({"queue": self.queue_plain(cmd.name)})

    def do_deletequeue(self, cmd: queues.DeleteQueue, index: int) -> dict[str, Any]:
        if cmd.name == DEFAULT:
            return _err("invalid")
        if cmd.name not in self.queues:
            return _err("queue_not_found")
        gone = [t for t in self.tasks if t["queue"] == cmd.name]
        self.forget(gone)
        del self.queues[cmd.name]
        return _ok({"count": len(gone)})

    def do_purgequeue(self, cmd: queues.PurgeQueue, index: int) -> dict[str, Any]:
        if cmd.name not in self.queues:
            return _err("queue_not_found")
        gone = [t for t in self.tasks if t["queue"] == cmd.name
                and t["status"] in ("pending", "leased", "dead")]
        self.forget(gone)
        return _ok({"count": len(gone)})

    def do_movetasks(self, cmd: queues.MoveTasks, index: int) -> dict[str, Any]:
        if cmd.source not in self.queues:
            return _err("queue_not_found")
        if cmd.destination is not None and cmd.destination not in self.queues:
            return _err("queue_not_found")
        if cmd.destination == cmd.source:
            return _err("invalid")
        moved = 0
        for task in self.tasks:
            if moved == cmd.max_tasks:
                break
            if task["queue"] != cmd.source or task["status"] not in ("pending", "dead"):
                continue
            target = task["source_queue"] if cmd.destination is None else cmd.destination
            if target is None or target not in self.queues or target == cmd.source:
                continue
            self.move(task, target, None)
            moved += 1
        return _ok({"count": moved})

    # -------------------------------------------------------------- reads

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        task = self.find(task_id)
        return None if task is None else self.plain(task)

    def stats(self) -> dict[str, Any]:
        by_status = {s: 0 for s in STATUSES}
        by_type: dict[str, dict[str, int]] = {}
        for task in self.tasks:
            by_status[task["status"]] += 1
            by_type.setdefault(task["type"], {s: 0 for s in STATUSES})[task["status"]] += 1
        by_queue = {name: self.counts(name) for name in sorted(self.queues)}
        return {"by_status": by_status, "by_type": dict(sorted(by_type.items())),
                "clock_ms": self.clock, "by_queue": by_queue}

    def list_all(self, status: str, task_type: str | None,
                 queue: str | None = None) -> list[dict[str, Any]]:
        return [self.plain(t) for t in self.tasks
                if t["status"] == status and (task_type is None or t["type"] == task_type)
                and (queue is None or t["queue"] == queue)]

    def get_queue(self, name: str) -> dict[str, Any] | None:
        if name not in self.queues:
            return None
        plain = self.queue_plain(name)
        plain["dead_letter_sources"] = sorted(
            other for other, entry in self.queues.items()
            if entry["settings"].dead_letter_queue == name)
        return plain

    def has_visible(self, types: list[str] | None, now_ms: int,
                    names: list[str] | None = None) -> bool:
        """Whether a lease at ``now_ms`` would get a task, or be refused (a queue that does
        not exist: the lease is then applied, not kept waiting)."""
        trial = copy.deepcopy(self)
        outcome = trial.apply(commands.Lease(worker_id="probe", types=None if types is None
                                    else tuple(types), max_tasks=1,
                                    queues=None if names is None else tuple(names),
                                    now_ms=now_ms), 0)
        return not outcome["ok"] or bool(outcome["value"]["tasks"])

    def next_deadline_ms(self) -> int | None:
        times = [t["lease"]["expires_at_ms"] for t in self.tasks if t["status"] == "leased"]
        times += [t["visible_at_ms"] for t in self.tasks
                  if t["status"] == "pending" and t["visible_at_ms"] > self.clock]
        times += self.budget_times()
        return min(times) if times else None
