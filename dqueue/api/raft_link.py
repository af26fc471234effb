"""One Raft client per thread: ZeroMQ sockets are never shared between threads.

``RaftLink`` hands each waitress worker thread its own client, created on first use by the
factory given to ``create_app`` (a real ``RaftClient`` in production, a fake in unit tests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol


class RaftClientLike(Protocol):
    """The interface of ``dqueue.protocol.ipc_client.RaftClient`` that the API uses."""

    def command(
        self, cmd_plain: dict[str, Any], timeout_ms: int = 5_000, wait_ms: int = 0
    ) -> Any: ...

    def read(
        self, query_plain: dict[str, Any], timeout_ms: int = 5_000, stale: bool = False
    ) -> Any: ...

    def close(self) -> None: ...


class RaftLink:
    """Per-thread Raft clients built by one factory.

    Args:
        factory: builds a new client; called once per thread that needs one.
    """

    def __init__(self, factory: Callable[[], RaftClientLike]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[RaftClientLike] = []

    def client(self) -> RaftClientLike:
        """This thread's client."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close_all(self) -> None:
        """Close every client (at process exit, when no request is in flight)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
