"""Producers and workers of a chaos run: every request they make is recorded in the history.

Each producer or worker is one history process with one request in flight. Outcomes are
classified so that the checker never mistakes an unknown outcome for a failure:

- ``ok``: the node answered 2xx;
- ``fail``: the request certainly had no effect: a 4xx answer, or a refused connection
  (nothing was sent);
- ``info``: anything else (timeouts, resets, 5xx including 503): it may have taken effect.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from dqueue.chaos.history import EventType, HistoryWriter, Op
from dqueue.testing.processes import http_json


@dataclass(frozen=True)
class Outcome:
    """What one request came back with."""

    type: EventType
    status: int | None
    body: Any
    error: str | None


def request(addr: str, method: str, path: str, body: Any, timeout_s: float) -> Outcome:
    """Send one request and classify its outcome (see the module docstring)."""
    try:
        status, answer = http_json(addr, method, path, body, timeout_s)
    except ConnectionRefusedError:
        return Outcome(EventType.FAIL, None, None, "connection refused")
    except OSError as exc:
        return Outcome(EventType.INFO, None, None, exc.__class__.__name__)
    if 200 <= status < 300:
        return Outcome(EventType.OK, status, answer, None)
    code = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        code = answer["error"].get("code")
    reason = f"{status} {code or ''}".strip()
    kind = EventType.FAIL if 400 <= status < 500 else EventType.INFO
    return Outcome(kind, status, answer, reason)


@dataclass(frozen=True)
class WorkloadConfig:
    """Knobs of the client side of a run."""

    http_addrs: tuple[str, ...]
    enqueues_per_s: float = 10.0   # per producer
    enqueue_attempts: int = 5      # tries per idempotency key before giving up on it
    lease_s: float = 3.0           # short, so a lease lost in a crash expires soon
    wait_s: float = 1.0            # long poll of the lease request
    abandon_rate: float = 0.02     # share of leased tasks a worker "crashes" on (never acks)
    timeout_s: float = 5.0
    max_retries: int = 100         # a task must not die of lease expiries during the run
    task_type: str = "chaos"


class ClientThread(threading.Thread):
    """One history process: a thread with its own random source, stopped by ``stopping``."""

    def __init__(self, name: str, config: WorkloadConfig, history: HistoryWriter,
                 rng: random.Random) -> None:
        super().__init__(name=name, daemon=True)
        self.config, self.history, self.rng = config, history, rng
        self.stopping = threading.Event()


class Producer(ClientThread):
    """Enqueues tasks with unique idempotency keys, retrying a key after an unknown outcome."""

    def run(self) -> None:
        """Loop until ``stopping`` is set."""
        period_s = 1.0 / self.config.enqueues_per_s
        sequence = 0
        while not self.stopping.is_set():
            sequence += 1
            key = f"{self.name}-{sequence}"
            for attempt in range(self.config.enqueue_attempts):
                if self.enqueue(key) is EventType.OK or self.stopping.is_set():
                    break
                self.stopping.wait(min(1.0, 0.1 * 2 ** attempt))
            self.stopping.wait(period_s)

    def enqueue(self, key: str) -> EventType:
        """One recorded enqueue of ``key`` to a random node."""
        addr = self.rng.choice(self.config.http_addrs)
        body = {"type": self.config.task_type, "payload": {"key": key},
                "idempotency_key": key, "max_retries": self.config.max_retries}
        self.history.record(self.name, EventType.INVOKE, Op.ENQUEUE, {"key": key, "node": addr})
        out = request(addr, "POST", "/tasks", body, self.config.timeout_s)
        value: dict[str, Any] = {"key": key}
        if out.type is EventType.OK and isinstance(out.body, dict):
            value.update(id=out.body.get("id"), duplicate=bool(out.body.get("duplicate")))
        self.history.record(self.name, out.type, Op.ENQUEUE, value, out.error)
        return out.type


class Worker(ClientThread):
    """Leases tasks and acks them with their lease token; now and then abandons one."""

    def run(self) -> None:
        """Loop until ``stopping`` is set."""
        while not self.stopping.is_set():
            task = self.lease()
            if task is None:
                continue
            if self.rng.random() < self.config.abandon_rate:
                continue  # the lease will expire and the task come back: a duplicate delivery
            for _ in range(3):
                out = self.ack(task)
                # Retry on another node while the outcome is unknown or nothing was sent (a
                # refused connection); a 4xx answer is final.
                final = out.status is not None and 400 <= out.status < 500
                if out.type is EventType.OK or final or self.stopping.is_set():
                    break

    def lease(self) -> dict[str, Any] | None:
        """One recorded lease request; returns the task when one was leased."""
        addr = self.rng.choice(self.config.http_addrs)
        body = {"worker_id": self.name, "types": [self.config.task_type],
                "lease_seconds": self.config.lease_s, "wait_seconds": self.config.wait_s}
        self.history.record(self.name, EventType.INVOKE, Op.LEASE,
                            {"worker": self.name, "node": addr})
        out = request(addr, "POST", "/tasks/lease", body,
                      self.config.timeout_s + self.config.wait_s)
        value: dict[str, Any] = {"worker": self.name, "id": None}
        task = out.body if out.type is EventType.OK and isinstance(out.body, dict) else None
        if task is not None:
            lease = task.get("lease") or {}
            value.update(id=task.get("id"), key=task.get("idempotency_key"),
                         token=lease.get("token"), attempts=task.get("attempts"))
        self.history.record(self.name, out.type, Op.LEASE, value, out.error)
        if out.type is not EventType.OK:
            self.stopping.wait(0.2)  # a failed lease returns at once: do not spin on a dead node
        return task if task and task.get("id") else None

    def ack(self, task: dict[str, Any]) -> Outcome:
        """One recorded ack of ``task`` with its lease token."""
        addr = self.rng.choice(self.config.http_addrs)
        token = (task.get("lease") or {}).get("token")
        request_value = {"worker": self.name, "id": task["id"], "token": token, "node": addr}
        self.history.record(self.name, EventType.INVOKE, Op.ACK, request_value)
        body = {"worker_id": self.name, "lease_token": token}
        out = request(addr, "POST", f"/tasks/{task['id']}/ack", body, self.config.timeout_s)
        self.history.record(self.name, out.type, Op.ACK, request_value, out.error)
        return out
