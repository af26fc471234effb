"""Bookkeeping of the requests a Raft process has accepted and not yet answered.

Every accepted request is in ``RequestTable.pending`` under its request id until it is answered,
whatever it waits for (a leader, its commit, a ReadIndex round, a parked long poll). The other
collections only hold request ids and are cleaned lazily: an id no longer pending is skipped.
Deadlines sit in a heap so that expiring requests costs O(log n), not a scan per loop turn.

The table is also this process's client session (Raft dissertation section 6.3,
``dqueue/queue/sessions.py``): every command it accepts over IPC gets the next serial number of
its client id, and ``first_unanswered`` is the lowest serial number of those still pending, so
the state machine may forget every outcome below it.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from dqueue.queue import Command
from dqueue.queue.sessions import ClientSession


def monotonic_ms() -> float:
    """Monotonic time in milliseconds: every deadline and tick of the Raft process."""
    return time.monotonic() * 1000.0


class Stage(StrEnum):
    """What a pending request is waiting for."""

    WAIT_LEADER = "wait_leader"  # no leader known yet (or a proposal was dropped)
    PROPOSED = "proposed"  # proposed on this node (the leader); waits for its entry to apply
    FORWARDED = "forwarded"  # sent to the leader node; waits for its answer or a local apply
    PARKED = "parked"  # an empty long-poll lease on the leader, waiting for a visible task
    WAITING_READ = "waiting_read"  # a get past its read point, waiting for its task to finish
    READ_INDEX = "read_index"  # a read waiting for its ReadIndex round
    READ_APPLY = "read_apply"  # a read whose read index is known, waiting for apply to reach it


class ReplyTo(NamedTuple):
    """Where the answer of a request goes: a local IPC client, or the peer that forwarded it.

    A named tuple, immutable, built once per request (cheaper than a frozen dataclass).
    """

    identity: bytes | None = None  # IPC routing identity of the API thread
    peer: str | None = None  # member id of the node that forwarded the command


@dataclass
class Pending:
    """One request that has not been answered yet.

    Attributes:
        rid: the request id (unique per client request, cluster-wide).
        reply_to: where the answer goes.
        is_read: a read query rather than a command.
        body: the plain command (unstamped) or the plain query.
        deadline_ms: monotonic time after which the request is answered with an error.
        wait_until_ms: for long-poll leases, when an empty answer is given instead of parking;
            for a waiting get, when it is answered with the task as it is.
        stage: what the request waits for.
        read_index: for reads in READ_APPLY: the index the state machine must reach.
        last_outcome: for parked leases, the empty outcome to give at ``wait_until_ms``.
        forwarded_to: the leader a command was forwarded to.
        command: the validated command object, kept so that the leader parses it only once
            (stamped with the time of intake on a leader; ``propose`` restamps it if needed).
        accepted_ms: monotonic time at which this node took the request in.
        session: the client session its proposals carry: this process's for a command
            accepted over IPC, the forwarding node's for a forwarded one (None for reads, and
            for a command forwarded by a node that sends none).
        may_be_in_log: a leader may have proposed it (it waits for a leader again after a
            leader change): its deadline answers ``timeout`` (outcome unknown), never
            ``no_leader`` (which tells the client it was not done).
    """

    rid: str
    reply_to: ReplyTo
    is_read: bool
    body: dict[str, Any]
    deadline_ms: float
    wait_until_ms: float = 0.0
    stage: Stage = Stage.WAIT_LEADER
    read_index: int = 0
    last_outcome: Any = None
    forwarded_to: str | None = None
    command: Command | None = None  # the validated command (commands only)
    accepted_ms: float = 0.0
    session: ClientSession | None = None
    may_be_in_log: bool = False


class RequestTable:
    """All requests of one Raft process, by request id, with their deadlines and stages.

    Args:
        client_id: this process incarnation's client id (its sessions' name).
    """

    def __init__(self, client_id: str = "client") -> None:
        self.client_id = client_id
        self._next_seq = 1
        # Serial numbers of this client's pending commands, in increasing order (assigned in
        # that order); the first is ``first_unanswered``.
        self._open_seqs: dict[int, None] = {}
        self.pending: dict[str, Pending] = {}
        # Insertion-ordered ids per stage, so that "every request waiting for a leader" and
        # "every parked lease" cost no scan of the whole table.
        self._by_stage: dict[Stage, dict[str, None]] = {stage: {} for stage in Stage}
        self._deadlines: list[tuple[float, int, str]] = []
        self._seq = itertools.count()

    def add(self, request: Pending) -> bool:
        """Track a new request; False when its request id is already pending (a duplicate)."""
        if request.rid in self.pending:
            return False
        self.pending[request.rid] = request
        self._by_stage[request.stage][request.rid] = None
        self._push_deadline(request)
        return True

    def move(self, request: Pending, stage: Stage) -> None:
        """Change the stage of a pending request (re-arming its deadline when it parks)."""
        self._by_stage[request.stage].pop(request.rid, None)
        request.stage = stage
        self._by_stage[stage][request.rid] = None
        if stage in _WAIT_STAGES:
            self._push_deadline(request)

    def pop(self, rid: str) -> Pending | None:
        """Stop tracking a request (it is being answered); None if it was not pending."""
        request = self.pending.pop(rid, None)
        if request is not None:
            self._by_stage[request.stage].pop(rid, None)
            self._close_session(request)
        return request

    def new_session(self) -> ClientSession:
        """The next serial number of this client (for a command accepted over IPC, or a parked
        lease proposed again), open until the request that carries it is popped."""
        seq = self._next_seq
        self._next_seq += 1
        self._open_seqs[seq] = None
        return ClientSession(self.client_id, seq, next(iter(self._open_seqs)))

    def release_session(self, request: Pending) -> None:
        """The command of ``request``'s session was applied but the request still waits (an
        empty long poll): close its serial number (so it no longer holds ``first_unanswered``
        down) and leave it without a session until it is sent again as a new command."""
        self._close_session(request)
        request.session = None

    def session_of(self, request: Pending) -> ClientSession | None:
        """The session to propose or forward ``request`` with: this client's carries the
        current ``first_unanswered``, another's is passed on as it came."""
        session = request.session
        if session is None or session.client_id != self.client_id:
            return session
        return ClientSession(session.client_id, session.seq,
                             next(iter(self._open_seqs), session.seq))

    def _close_session(self, request: Pending) -> None:
        session = request.session
        if session is not None and session.client_id == self.client_id:
            self._open_seqs.pop(session.seq, None)

    def in_stage(self, stage: Stage) -> list[Pending]:
        """Pending requests in ``stage``, oldest first."""
        return [self.pending[rid] for rid in self._by_stage[stage]]

    def count(self, stage: Stage) -> int:
        """How many requests are in ``stage``."""
        return len(self._by_stage[stage])

    def next_deadline_ms(self) -> float | None:
        """The earliest armed deadline, or None."""
        while self._deadlines and self._deadlines[0][2] not in self.pending:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def expired(self, now_ms: float) -> list[Pending]:
        """Remove and return every request whose deadline (or parking time) has passed."""
        out = []
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            due, _, rid = heapq.heappop(self._deadlines)
            request = self.pending.get(rid)
            if request is None or _due_ms(request) > due:
                continue  # answered already, or re-armed later (a newer heap item stands for it)
            self.pop(rid)
            out.append(request)
        return out

    def _push_deadline(self, request: Pending) -> None:
        heapq.heappush(self._deadlines, (_due_ms(request), next(self._seq), request.rid))


_WAIT_STAGES = frozenset({Stage.PARKED, Stage.WAITING_READ})


def _due_ms(request: Pending) -> float:
    """When a request must be answered: a parked lease or a waiting get at the end of its
    wait."""
    return request.wait_until_ms if request.stage in _WAIT_STAGES else request.deadline_ms
