"""RaftLink (dqueue/api/raft_link.py): one Raft client per thread, all closed at exit."""

from __future__ import annotations

import threading
from typing import Any

from dqueue.api.raft_link import RaftLink


class Recorder:
    """A client that remembers the thread that made it and whether it was closed."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.closed = 0

    def command(self, cmd_plain: dict[str, Any], timeout_ms: int = 5_000,
                wait_ms: int = 0) -> Any:
        return {"ok": True, "value": None}

    def read(self, query_plain: dict[str, Any], timeout_ms: int = 5_000,
             stale: bool = False) -> Any:
        return None

    def close(self) -> None:
        self.closed += 1


def test_a_thread_gets_the_same_client_every_time():
    made: list[Recorder] = []
    link = RaftLink(lambda: made.append(Recorder()) or made[-1])
    assert link.client() is link.client()
    assert len(made) == 1


def test_each_thread_gets_its_own_client_and_close_all_closes_each_once():
    made: list[Recorder] = []
    lock = threading.Lock()

    def factory() -> Recorder:
        with lock:
            made.append(Recorder())
            return made[-1]

    link = RaftLink(factory)
    seen: dict[int, Recorder] = {}

    def use() -> None:
        client = link.client()
        assert link.client() is client
        seen[threading.get_ident()] = client  # type: ignore[assignment]

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 4 and len({id(c) for c in made}) == 4
    assert all(client.thread == ident for ident, client in seen.items())
    link.close_all()
    assert [c.closed for c in made] == [1, 1, 1, 1]
    link.close_all()  # nothing left to close: a second call closes nothing twice
    assert [c.closed for c in made] == [1, 1, 1, 1]
