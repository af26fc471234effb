"""Long polls never hold every HTTP thread: beyond the gate's places one is answered at once."""

from __future__ import annotations

import threading
from typing import Any

import falcon.testing
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.api.longpoll import LongPollGate, max_parked_polls
from dqueue.config import NodeConfig
from dqueue.testing import wait_for


def test_max_parked_polls_leaves_threads_for_everything_else():
    assert max_parked_polls(32) == 24
    assert max_parked_polls(2) == 1
    assert max_parked_polls(1) == 1


def test_gate_counts_places():
    gate = LongPollGate(2)
    assert gate.try_enter() and gate.try_enter()
    assert not gate.try_enter()
    gate.leave()
    assert gate.try_enter()
    assert (gate.parked, gate.refused) == (2, 1)


class BlockingRaft:
    """Holds every lease that asks for a wait until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waits: list[int] = []
        self.lock = threading.Lock()

    def command(self, cmd: dict[str, Any], timeout_ms: int = 5_000, wait_ms: int = 0) -> Any:
        with self.lock:
            self.waits.append(wait_ms)
        if wait_ms:
            assert self.release.wait(10)
        return {"ok": True, "value": {"tasks": []}}

    def read(self, query: dict[str, Any], timeout_ms: int = 5_000, stale: bool = False) -> Any:
        return {"status": "ok"}

    def close(self) -> None:
        pass


def test_a_long_poll_beyond_the_parked_places_is_answered_at_once():
    raft = BlockingRaft()
    config = NodeConfig(id="n1", http_threads=4)  # 3 places
    app = create_app(lambda: raft, config, CollectorRegistry(), coalesce=False)
    client = falcon.testing.TestClient(app)
    body = {"worker_id": "w", "wait_seconds": 5}
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(
        client.simulate_post("/tasks/lease", json=body).status_code)) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(raft.waits) == 3, 10.0, "3 parked waits", interval_s=0.005)
        answer = client.simulate_post("/tasks/lease", json=body)
        assert answer.status_code == 204
        assert answer.headers["Dqueue-Wait"].startswith("refused")
        assert answer.headers["Retry-After"] == "1"
        assert len(raft.waits) == 3  # answered without a command
    finally:
        raft.release.set()
        for thread in threads:
            thread.join(10)
    assert statuses == [204, 204, 204]
    answer = client.simulate_post("/tasks/lease", json=body)  # places free again
    assert "Dqueue-Wait" not in answer.headers and raft.waits[-1] == 5_000
