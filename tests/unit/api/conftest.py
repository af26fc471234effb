"""The API's view of the Raft process for unit tests, and an app built on it.

``FakeRaft`` fakes the Raft process (recorded requests, injected failures, made-up health,
cluster and metrics figures); the queue behind it is not faked: commands and queue reads go
to a ``LocalQueue``, the real queue state machine, on a clock that stands still at ``NOW_MS``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import falcon.testing
import pytest
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.config import NodeConfig
from dqueue.testing import LocalQueue, ManualClock

NOW_MS = 1_764_272_880_123  # 2025-11-27T19:48:00.123Z


class Tasks(Mapping[str, dict[str, Any]]):
    """The queue's tasks by id, in plain form, read from the state machine."""

    def __init__(self, queue: LocalQueue) -> None:
        self._queue = queue

    def __getitem__(self, task_id: str) -> dict[str, Any]:
        found = self._queue.read({"op": "get", "id": task_id})
        if found is None:
            raise KeyError(task_id)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._queue.state._tasks)

    def __len__(self) -> int:
        return len(self._queue.state._tasks)


class FakeRaft:
    """The RaftClient interface over a LocalQueue.

    It records every command and read so tests can assert what reached "the log", and raises
    ``fail_with`` (when set) instead of answering.
    """

    def __init__(self) -> None:
        self.clock = ManualClock(NOW_MS)
        self.queue = LocalQueue(clock=self.clock)
        self.tasks = Tasks(self.queue)
        self.commands: list[dict[str, Any]] = []
        self.reads: list[dict[str, Any]] = []
        self.waits: list[int] = []
        self.fail_with: Exception | None = None
        self.health_overrides: dict[str, Any] = {}
        self.metrics_value: Any = {"term": 3, "commit_index": 7}

    def close(self) -> None:
        pass

    def command(self, cmd: dict[str, Any], timeout_ms: int = 5_000, wait_ms: int = 0) -> Any:
        if self.fail_with is not None:
            raise self.fail_with
        self.commands.append(cmd)
        self.waits.append(wait_ms)
        # The recorded wait is what the API asked for; nothing waits here (time stands still).
        return self.queue.command(cmd)

    def read(self, query: dict[str, Any], timeout_ms: int = 5_000, stale: bool = False) -> Any:
        if self.fail_with is not None:
            raise self.fail_with
        self.reads.append(query)
        op = query["op"]
        if op in ("get", "list", "queues", "queue", "schedules", "schedule", "rate_limits",
                  "workers"):
            # The recorded wait is what the API asked for; a waiting get is answered at once.
            return self.queue.read({k: v for k, v in query.items() if k != "wait_ms"})
        if op == "stats":
            return {**self.queue.read(query), "raft": {"node_id": "n1", "term": 3}}
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
