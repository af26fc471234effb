"""A deliberately naive model of the queue rules: a list of task dicts and loops.

It shares nothing with ``dqueue.queue.state`` except the backoff formula and the command
classes, and is slow on purpose: every rule is written the most obvious way, so that the
stateful test can compare the indexed implementation against it step by step.
"""

from __future__ import annotations

import copy
from typing import Any

from dqueue.queue import commands
from dqueue.queue.backoff import backoff_ms
from dqueue.queue.config import QueueConfig

STATUSES = ["pending", "leased", "completed", "dead", "cancelled"]
FINISHED = ("completed", "dead", "cancelled")


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
    """Naive queue: ``tasks`` in enqueue order, ``keys`` a dict key -> [task id, expires]."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.clock = 0
        self.tasks: list[dict[str, Any]] = []
        self.keys: dict[str, list[Any]] = {}
        # Hidden per task: who completed it, with which token.
        self.done: dict[str, tuple[str, str]] = {}
        # Tokens of leases applied without a nonce (old entries): only those may be held by
        # worker id alone.
        self.legacy_tokens: set[str] = set()

    def find(self, task_id: str) -> dict[str, Any] | None:
        for task in self.tasks:
            if task["id"] == task_id:
                return task
        return None

    def plain(self, task: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(task)

    def key_owner(self, key: str) -> dict[str, Any] | None:
        entry = self.keys.get(key)
        if entry is None or entry[1] <= self.clock:
            return None
        return self.find(entry[0])

    # -------------------------------------------------------------- time

    def fail(self, task: dict[str, Any], at_ms: int, error: str | None, dead: bool) -> None:
        task["lease"] = None
        task["last_error"] = error
        task["updated_at_ms"] = at_ms
        if dead or task["attempts"] >= task["max_retries"]:
            task["status"] = "dead"
        else:
            task["status"] = "pending"
            task["visible_at_ms"] = at_ms + backoff_ms(self.config, task["id"], task["attempts"])

    def advance(self) -> None:
        for task in self.tasks:
            if task["status"] == "leased" and task["lease"]["expires_at_ms"] <= self.clock:
                self.fail(task, task["lease"]["expires_at_ms"], "lease expired", False)
        keep = []
        for task in self.tasks:
            old = (task["status"] in FINISHED
                   and task["updated_at_ms"] + self.config.retention_ms <= self.clock)
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
        saved = (copy.deepcopy(self.tasks), copy.deepcopy(self.keys))
        tasks, duplicates = [], []
        for new in cmd.tasks:
            owner = None if new.idempotency_key is None else self.key_owner(new.idempotency_key)
            if owner is not None:
                retries = self.config.max_retries if new.max_retries is None else new.max_retries
                if not (owner["type"] == new.type and owner["priority"] == new.priority
                        and owner["max_retries"] == retries
                        and _same(owner["payload"], new.payload)):
                    self.tasks, self.keys = saved
                    return _err("idempotency_key_reused")
                tasks.append(self.plain(owner))
                duplicates.append(True)
                continue
            if self.find(new.id) is not None:
                self.tasks, self.keys = saved
                return _err("invalid")
            task = {"id": new.id, "type": new.type, "payload": new.payload,
                    "priority": new.priority,
                    "max_retries": (self.config.max_retries if new.max_retries is None
                                    else new.max_retries),
                    "attempts": 0, "status": "pending", "idempotency_key": new.idempotency_key,
                    "created_at_ms": self.clock, "updated_at_ms": self.clock,
                    "visible_at_ms": self.clock + new.delay_ms, "lease": None,
                    "last_error": None}
            self.tasks.append(task)
            if new.idempotency_key is not None:
                self.keys[new.idempotency_key] = [new.id,
                                                  self.clock + self.config.dedup_window_ms]
            tasks.append(self.plain(task))
            duplicates.append(False)
        depth = len([t for t in self.tasks if t["status"] in ("pending", "leased")])
        if self.config.max_depth and False in duplicates and depth > self.config.max_depth:
            self.tasks, self.keys = saved
            return _err("queue_full")
        return _ok({"tasks": tasks, "duplicates": duplicates})

    def do_lease(self, cmd: commands.Lease, index: int) -> dict[str, Any]:
        lease_ms = self.config.lease_ms if cmd.lease_ms is None else cmd.lease_ms
        visible = [t for t in self.tasks
                   if t["status"] == "pending" and t["visible_at_ms"] <= self.clock
                   and (cmd.types is None or t["type"] in cmd.types)]
        # Stable sort: equal priorities keep enqueue (log) order.
        visible.sort(key=lambda t: -t["priority"])
        out = []
        for position, task in enumerate(visible[:cmd.max_tasks]):
            task["status"] = "leased"
            task["attempts"] += 1
            task["updated_at_ms"] = self.clock
            if cmd.nonce is None:
                token = f"{index}.{position}"
                self.legacy_tokens.add(token)
            else:
                token = f"{cmd.nonce}.{position}"
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
        self.fail(task, self.clock, cmd.reason, cmd.dead_letter)
        return _ok({"task": self.plain(task)})

    def do_extend(self, cmd: commands.Extend, index: int) -> dict[str, Any]:
        task, error = self.held(cmd)
        if error:
            return error
        lease_ms = self.config.lease_ms if cmd.lease_ms is None else cmd.lease_ms
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
            targets = [t for t in self.tasks if t["status"] == "dead"
                       and (cmd.type is None or t["type"] == cmd.type)]
        for task in targets:
            task["status"] = "pending"
            task["attempts"] = 0
            task["updated_at_ms"] = self.clock
            task["visible_at_ms"] = self.clock
        return _ok({"count": len(targets)})

    def do_purge(self, cmd: commands.Purge, index: int) -> dict[str, Any]:
        gone = [t for t in self.tasks if t["status"] == "dead"
                and (cmd.type is None or t["type"] == cmd.type)]
        self.tasks = [t for t in self.tasks if t not in gone]
        for task in gone:
            key = task["idempotency_key"]
            if key is not None and key in self.keys and self.keys[key][0] == task["id"]:
                del self.keys[key]
        return _ok({"count": len(gone)})

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
        return {"by_status": by_status, "by_type": by_type, "clock_ms": self.clock}

    def list_all(self, status: str, task_type: str | None) -> list[dict[str, Any]]:
        return [self.plain(t) for t in self.tasks
                if t["status"] == status and (task_type is None or t["type"] == task_type)]

    def has_visible(self, types: list[str] | None, now_ms: int) -> bool:
        trial = copy.deepcopy(self)
        outcome = trial.apply(commands.Lease(worker_id="probe", types=None if types is None
                                    else tuple(types), max_tasks=1, now_ms=now_ms), 0)
        return bool(outcome["value"]["tasks"])

    def next_deadline_ms(self) -> int | None:
        times = [t["lease"]["expires_at_ms"] for t in self.tasks if t["status"] == "leased"]
        times += [t["visible_at_ms"] for t in self.tasks
                  if t["status"] == "pending" and t["visible_at_ms"] > self.clock]
        return min(times) if times else None
