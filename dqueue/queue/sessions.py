"""Client sessions: a repeated proposal is answered with its first outcome, never applied twice.

Raft dissertation section 6.3 ("Implementing linearizable semantics"): each client gives its
commands a unique serial number; the state machine remembers, per client, the outcome of every
command it applied, and answers a repeat from that record instead of executing it again. A
client also says which of its commands it is still waiting for (``first_unanswered``): the
outcomes of every lower serial number are discarded, so the record stays bounded by what the
client has in flight. A session that shows no activity for ``ttl_ms`` of cluster time is
forgotten.

Here a "client" is the Raft process that first accepted a request (its router, one id per
process incarnation), so a follower can re-send a forwarded proposal to a new leader without
the risk of applying it twice.

The table is pure state-machine state: it changes only through ``record`` and ``expire``, which
every member calls at the same log positions with the same arguments, so it is the same on
every member and goes into snapshots (``to_plain`` / ``from_plain``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Sessions idle this long (cluster time) are forgotten.
DEFAULT_SESSION_TTL_MS = 10 * 60 * 1000
#: Outcomes kept per client at most: a client never has more commands in flight than this (the
#: Raft process caps its proposals in flight far below it), so none it could repeat is lost.
MAX_OUTCOMES_PER_CLIENT = 4096
#: Clients remembered at most (the oldest by last activity go first).
MAX_CLIENTS = 4096
MAX_CLIENT_ID_CHARS = 128


class _Stale:
    """Marker: a repeat of a command whose outcome the client already acknowledged."""

    def __repr__(self) -> str:
        return "STALE"


#: ``lookup`` answer for a serial number below the client's ``first_unanswered``: the command
#: was applied and answered, its outcome discarded. It must not be applied again.
STALE = _Stale()


@dataclass(slots=True)
class _Session:
    """One client's record.

    Attributes:
        first_unanswered: every serial number below it was answered; invariant: no key of
            ``outcomes`` is below it.
        outcomes: serial number -> outcome, in the order applied.
        last_active_ms: cluster time of the client's last command.
    """

    first_unanswered: int = 0
    outcomes: dict[int, Any] = field(default_factory=dict)
    last_active_ms: int = 0


class Sessions:
    """The session table of one state machine.

    Args:
        ttl_ms: idle sessions are forgotten after this long of cluster time.
        max_outcomes_per_client: bound on the outcomes kept per client.
        max_clients: bound on the clients kept.
    """

    def __init__(self, ttl_ms: int = DEFAULT_SESSION_TTL_MS,
                 max_outcomes_per_client: int = MAX_OUTCOMES_PER_CLIENT,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.ttl_ms = ttl_ms
        self.max_outcomes_per_client = max_outcomes_per_client
        self.max_clients = max_clients
        self._sessions: dict[str, _Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def lookup(self, client_id: str, seq: int) -> Any:
        """The first outcome of ``(client_id, seq)`` if it was applied, ``STALE`` if it was
        applied and its outcome discarded, or None when it is new and must be applied."""
        session = self._sessions.get(client_id)
        if session is None:
            return None
        if seq < session.first_unanswered:
            return STALE
        return session.outcomes.get(seq)

    def record(self, client_id: str, seq: int, first_unanswered: int, outcome: Any,
               now_ms: int) -> None:
        """Remember the outcome of a command just applied (call only after ``lookup`` said
        None), and discard the outcomes the client no longer waits for."""
        sessions = self._sessions
        session = sessions.get(client_id)
        if session is None:
            if len(sessions) >= self.max_clients:
                # Evict the least recently active client (dicts keep insertion order, and
                # every record moves its client to the end).
                del sessions[next(iter(sessions))]
            session = _Session()
        else:
            # Move to the end: the order of the dict is the order of last activity.
            del sessions[client_id]
        sessions[client_id] = session
        session.last_active_ms = max(session.last_active_ms, now_ms)
        if first_unanswered > session.first_unanswered:
            session.first_unanswered = first_unanswered
            outcomes = session.outcomes
            for old in [s for s in outcomes if s < first_unanswered]:
                del outcomes[old]
        if seq >= session.first_unanswered:
            outcomes = session.outcomes
            outcomes[seq] = outcome
            while len(outcomes) > self.max_outcomes_per_client:
                del outcomes[next(iter(outcomes))]

    def expire(self, now_ms: int) -> int:
        """Forget sessions idle for ``ttl_ms``; returns how many were dropped."""
        cutoff = now_ms - self.ttl_ms
        stale = [c for c, s in self._sessions.items() if s.last_active_ms <= cutoff]
        for client_id in stale:
            del self._sessions[client_id]
        return len(stale)

    def to_plain(self) -> list[list[Any]]:
        """Plain values for a snapshot, in a deterministic order (activity order):
        ``[[client_id, first_unanswered, last_active_ms, [[seq, outcome], ...]], ...]``."""
        return [[client_id, s.first_unanswered, s.last_active_ms,
                 [[seq, outcome] for seq, outcome in s.outcomes.items()]]
                for client_id, s in self._sessions.items()]

    def load_plain(self, plain: Any) -> None:
        """Replace the table with ``to_plain`` output.

        Raises:
            ValueError: ``plain`` is not what ``to_plain`` writes.
        """
        sessions: dict[str, _Session] = {}
        if not isinstance(plain, list):
            raise ValueError("sessions: expected a list")
        for row in plain:
            if not (isinstance(row, list) and len(row) == 4):
                raise ValueError("sessions: each row is [client, first, active, outcomes]")
            client_id, first, active, outcomes = row
            if not (isinstance(client_id, str) and 0 < len(client_id) <= MAX_CLIENT_ID_CHARS):
                raise ValueError("sessions: bad client id")
            if type(first) is not int or type(active) is not int or first < 0 or active < 0:
                raise ValueError("sessions: bad counters")
            if not isinstance(outcomes, list):
                raise ValueError("sessions: outcomes must be a list")
            session = _Session(first, {}, active)
            for pair in outcomes:
                if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int
                        and pair[0] >= first):
                    raise ValueError("sessions: bad outcome row")
                session.outcomes[pair[0]] = pair[1]
            sessions[client_id] = session
        self._sessions = sessions
