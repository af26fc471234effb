"""What the request router needs of its node: a few narrow collaborators, not the process.

In the spirit of hashicorp/raft's ``NewRaft(conf, fsm, logs, stable, snaps, trans)``: the Raft
process fills ``RouterLinks`` with the parts the router uses (``process.py``), and the router's
tests fill it with small fakes (``tests/unit/node/test_router.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from dqueue.node.leadership import Leadership
from dqueue.node.queries import NodeView, QueueReads
from dqueue.node.views import NodeFigures
from dqueue.queue import Command
from dqueue.queue.sessions import ClientSession, Sessions


class Replier(Protocol):
    """Answers to the local API threads (``IpcServer``)."""

    def send_res(self, identity: bytes, rid: str, key: str, value: Any) -> None:
        """Answer a request: ``key`` is ``outcome`` for a command, ``value`` for a read."""

    def send_err(self, identity: bytes, rid: str, code: str, message: str,
                 leader_id: str | None = None, leader_http: str | None = None) -> None:
        """Answer a request with an error and a leader hint."""


class Propose(Protocol):
    """Add a command to this turn's batch entry, on the leader (``RaftProcess.propose``)."""

    def __call__(self, rid: str, cmd: dict[str, Any], command: Command | None = None,
                 session: ClientSession | None = None) -> None:
        """Stamp ``cmd`` with the leader's time and batch it."""


class QueueReadView(QueueReads, Protocol):
    """What the router reads of the applied queue state (``QueueState``); it never applies."""

    @property
    def sessions(self) -> Sessions:
        """The client session table (a repeat is answered from it)."""

    def has_visible(self, types: Iterable[str] | None, now_ms: int,
                    queues: Iterable[str] | None = None) -> bool:
        """Whether a lease of ``types`` in ``queues`` applied at ``now_ms`` would get a task
        (or be refused for a queue that does not exist)."""


@dataclass(frozen=True)
class RouterLinks:
    """The router's collaborators.

    Attributes:
        node_id: this node's member id.
        leadership: the one source of this node's role and leader.
        replier: answers to local API threads.
        send_peer: sends one message to another node; False when it was dropped.
        propose: batches a command (on the leader).
        read_index: starts a ReadIndex round with this context (the Raft core).
        queue: the applied queue state, read only.
        wall_ms: the leader's clock for stamping commands.
        is_stopping: whether the node is shutting down (new requests are refused).
        http_of: a member's HTTP address for leader hints, None when unknown.
        view: what the local health, cluster and stats reads show of the node, now.
        figures: every figure of the node, now (the ``metrics`` read).
        max_wait_ms: the longest long poll a lease may ask for.
    """

    node_id: str
    leadership: Leadership
    replier: Replier
    send_peer: Callable[[str, bytes, Any], bool]
    propose: Propose
    read_index: Callable[[bytes], None]
    queue: QueueReadView
    wall_ms: Callable[[], int]
    is_stopping: Callable[[], bool]
    http_of: Callable[[str | None], str | None]
    view: Callable[[], NodeView]
    figures: Callable[[], NodeFigures]
    max_wait_ms: int
