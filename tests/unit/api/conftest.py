"""A fake Raft client speaking the RaftClient interface, and an app built on it."""

from __future__ import annotations

import itertools
from typing import Any

import falcon.testing
import pytest
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.config import NodeConfig

NOW_MS = 1_764_272_880_123  # 2025-11-27T19:48:00.123Z


class FakeRaft:
    """A naive in-memory queue behind the RaftClient interface.

    It records every command and read so tests can assert what reached "the log", and raises
    ``fail_with`` (when set) instead of answering.
    """

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.reads: list[dict[str, Any]] = []
        self.waits: list[int] = []
        self.fail_with: Exception | None = None
        self.health_overrides: dict[str, Any] = {}
        self.keys: dict[str, str] = {}
        self.index = itertools.count(1)
        self.metrics_value: Any = {"term": 3, "commit_index": 7}

    def close(self) -> None:
        pass

    def command(self, cmd: dict[str, Any], timeout_ms: int = 5_000, wait_ms: int = 0) -> Any:
        if self.fail_with is not None:
            raise self.fail_with
        self.commands.append(cmd)
        self.waits.append(wait_ms)
        return getattr(self, "_" + cmd["op"])(cmd, next(self.index))

    def read(self, query: dict[str, Any], timeout_ms: int = 5_000, stale: bool = False) -> Any:
        if self.fail_with is not None:
            raise self.fail_with
        self.reads.append(query)
        op = query["op"]
        if op == "get":
            return self.tasks.get(query["id"])
        if op == "stats":
            by_status: dict[str, int] = {}
            for task in self.tasks.values():
                by_status[task["status"]] = by_status.get(task["status"], 0) + 1
            return {"by_status": by_status, "by_type": {}, "clock_ms": NOW_MS,
                    "raft": {"node_id": "n1", "term": 3}}
        if op == "list":
            found = [t for t in self.tasks.values() if t["status"] == query["status"]]
            return {"tasks": found[: query["limit"]], "next_cursor": None}
        if op == "health":
            return {"node_id": "n1", "role": "leader", "term": 3, "leader_id": "n1",
                    "leader_http": "127.0.0.1:8081", "commit_index": 7, "applied_index": 7,
                    **self.health_overrides}
        if op == "cluster":
            return {"leader_id": "n1", "term": 3,
                    "members": [{"id": "n1", "role": "leader"}, {"id": "n2", "role": "follower"}]}
        if op == "metrics":
            return self.metrics_value
        raise AssertionError(f"unexpected query {query}")

    def _enqueue(self, cmd: dict[str, Any], index: int) -> Any:
        out, dups = [], []
        for new in cmd["tasks"]:
            key = new.get("idempotency_key")  # optional fields may be omitted
            if key is not None and key in self.keys:
                out.append(self.tasks[self.keys[key]])
                dups.append(True)
                continue
            task = {
                "id": new["id"], "type": new["type"], "payload": new["payload"],
                "priority": new.get("priority") or 0, "max_retries": new.get("max_retries") or 3,
                "attempts": 0, "status": "pending", "idempotency_key": key,
                "created_at_ms": NOW_MS, "updated_at_ms": NOW_MS,
                "visible_at_ms": NOW_MS + (new.get("delay_ms") or 0), "lease": None,
                "last_error": None,
            }
            self.tasks[task["id"]] = task
            if key is not None:
                self.keys[key] = task["id"]
            out.append(task)
            dups.append(False)
        return {"ok": True, "value": {"tasks": out, "duplicates": dups}}

    def _lease(self, cmd: dict[str, Any], index: int) -> Any:
        found = []
        for task in self.tasks.values():
            if len(found) == cmd["max_tasks"]:
                break
            if task["status"] == "pending" and (not cmd["types"] or task["type"] in cmd["types"]):
                task["status"] = "leased"
                task["attempts"] += 1
                task["lease"] = {"worker_id": cmd["worker_id"], "token": f"{index}.0",
                                 "expires_at_ms": NOW_MS + (cmd["lease_ms"] or 30_000)}
                found.append(task)
        return {"ok": True, "value": {"tasks": found}}

    def _held(self, cmd: dict[str, Any]) -> Any:
        task = self.tasks.get(cmd["id"])
        if task is None:
            return None, {"ok": False, "code": "not_found", "message": "no such task"}
        lease = task["lease"]
        if task["status"] != "leased" or lease["worker_id"] != cmd["worker_id"] or (
            cmd["token"] is not None and cmd["token"] != lease["token"]
        ):
            return None, {"ok": False, "code": "lease_conflict", "message": "not your lease"}
        return task, None

    def _ack(self, cmd: dict[str, Any], index: int) -> Any:
        task, error = self._held(cmd)
        if error:
            return error
        task.update(status="completed", lease=None)
        return {"ok": True, "value": {"task": task}}

    def _nack(self, cmd: dict[str, Any], index: int) -> Any:
        task, error = self._held(cmd)
        if error:
            return error
        dead = cmd["dead_letter"] or task["attempts"] > task["max_retries"]
        task.update(status="dead" if dead else "pending", lease=None, last_error=cmd["reason"])
        return {"ok": True, "value": {"task": task}}

    def _extend(self, cmd: dict[str, Any], index: int) -> Any:
        task, error = self._held(cmd)
        if error:
            return error
        task["lease"]["expires_at_ms"] += cmd["lease_ms"] or 30_000
        return {"ok": True, "value": {"task": task}}

    def _cancel(self, cmd: dict[str, Any], index: int) -> Any:
        task = self.tasks.get(cmd["id"])
        if task is None:
            return {"ok": False, "code": "not_found", "message": "no such task"}
        if task["status"] != "pending":
            return {"ok": False, "code": "invalid_state", "message": "not pending"}
        task["status"] = "cancelled"
        return {"ok": True, "value": {"task": task}}

    def _redrive(self, cmd: dict[str, Any], index: int) -> Any:
        n = 0
        for task in self.tasks.values():
            if task["status"] == "dead" and cmd["id"] in (None, task["id"]) and (
                cmd["type"] in (None, task["type"])
            ):
                task.update(status="pending", attempts=0)
                n += 1
        return {"ok": True, "value": {"count": n}}

    def _purge(self, cmd: dict[str, Any], index: int) -> Any:
        dead = [i for i, t in self.tasks.items()
                if t["status"] == "dead" and cmd["type"] in (None, t["type"])]
        for task_id in dead:
            del self.tasks[task_id]
        return {"ok": True, "value": {"count": len(dead)}}


@pytest.fixture
def fake() -> FakeRaft:
    return FakeRaft()


@pytest.fixture
def config() -> NodeConfig:
    return NodeConfig(id="n1", max_body_bytes=65_536, peers_http={"n1": "127.0.0.1:8081"})


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def client(
    fake: FakeRaft, config: NodeConfig, registry: CollectorRegistry
) -> falcon.testing.TestClient:
    ids = (f"t{i:031d}" for i in itertools.count(1))
    app = create_app(lambda: fake, config, registry, new_id=lambda: next(ids))
    return falcon.testing.TestClient(app)
