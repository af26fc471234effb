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
every member and goes into snapshots (``to_plain`` / ``load_plain``). ``apply_once`` is the one
place that decides between applying a command and answering it from the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from dqueue.queue.commands import Command
    from dqueue.queue.state import QueueState

#: Sessions idle this long (cluster time) are forgotten. Far above any request's deadline
#: (a forwarding node stops re-sending a command when its request times out), so no repeat
#: can arrive after its session was forgotten.
DEFAULT_SESSION_TTL_MS = 10 * 60 * 1000
#: Outcomes kept per client at most: a client never has more commands in flight than this (the
#: Raft process caps its proposals in flight far below it), so none it could repeat is lost.
#: Past it the oldest is dropped and ``first_unanswered`` moves above it: a repeat of it is then
#: refused (``duplicate_request``), never applied again.
MAX_OUTCOMES_PER_CLIENT = 4096
#: Clients remembered at most (the oldest by last activity go first).
MAX_CLIENTS = 4096
MAX_CLIENT_ID_CHARS = 128
#: The outcome code of a repeat whose first outcome was discarded.
DUPLICATE_REQUEST = "duplicate_request"


class ClientSession(NamedTuple):
    """The session a proposed item carries (Raft dissertation section 6.3).

    Attributes:
        client_id: the Raft process incarnation that first accepted the request.
        seq: the command's serial number within that client, one per accepted command.
        first_unanswered: the client's lowest serial number still unanswered (at most ``seq``
            while this command is unanswered): the outcomes below it may be discarded.
    """

    client_id: str
    seq: int
    first_unanswered: int


def is_session(value: Any) -> bool:
    """Whether ``value`` (a decoded item's or message's fields) is a well-formed session."""
    return (isinstance(value, tuple | list) and len(value) == 3
            and isinstance(value[0], str) and 0 < len(value[0]) <= MAX_CLIENT_ID_CHARS
            and type(value[1]) is int and type(value[2]) is int
            and 0 <= value[2] <= value[1] < 1 << 63)


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
        outcomes: serial number -> outcome; invariant: keys in increasing order (pruning by
            ``first_unanswered`` and the size bound then only pop from the front).
        last_active_ms: cluster time of the client's last command.
    """

    first_unanswered: int = 0
    outcomes: dict[int, Any] = field(default_factory=dict)
    last_active_ms: int = 0


class Sessions:
    """The session table of one state machine.

    Invariant: the table's order is the order of last activity, and ``last_active_ms`` does
    not decrease along it (``record`` never stamps below the most recent client's time), so
    expiry pops from the front only.

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

    def outcomes_kept(self) -> int:
        """How many outcomes the table holds, over all clients (O(clients))."""
        return sum(len(s.outcomes) for s in self._sessions.values())

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
        # Stamped no earlier than the most recent client (class invariant), a function of the
        # table alone, so a restored table stamps exactly as the one it was taken from.
        if sessions:
            newest_ms = sessions[next(reversed(sessions))].last_active_ms
            if newest_ms > now_ms:
                now_ms = newest_ms
        session = sessions.get(client_id)
        if session is None:
            if len(sessions) >= self.max_clients:
                # Evict the least recently active client (the front: see the class invariant).
                del sessions[next(iter(sessions))]
            session = _Session()
            sessions[client_id] = session
        elif next(reversed(sessions)) != client_id:
            # Move to the end: the order of the dict is the order of last activity.
            del sessions[client_id]
            sessions[client_id] = session
        session.last_active_ms = now_ms
        outcomes = session.outcomes
        if first_unanswered > session.first_unanswered:
            session.first_unanswered = first_unanswered
            # Keys are increasing: the discarded ones are at the front.
            while outcomes and next(iter(outcomes)) < first_unanswered:
                del outcomes[next(iter(outcomes))]
        if seq < session.first_unanswered:
            return  # applied, but the client no longer waits for it: nothing to remember
        if outcomes and seq < next(reversed(outcomes)):
            # Applied out of serial order (a re-sent command overtaken by a later one): rare,
            # so the increasing key order is restored by a rebuild.
            outcomes[seq] = outcome
            session.outcomes = outcomes = dict(sorted(outcomes.items()))
        else:
            outcomes[seq] = outcome
        while len(outcomes) > self.max_outcomes_per_client:
            # Dropped outcome: its repeats must be refused, not applied again.
            dropped = next(iter(outcomes))
            del outcomes[dropped]
            session.first_unanswered = dropped + 1

    def expire(self, now_ms: int) -> int:
        """Forget sessions idle for ``ttl_ms``; returns how many were dropped."""
        cutoff = now_ms - self.ttl_ms
        sessions = self._sessions
        dropped = 0
        while sessions:
            client_id = next(iter(sessions))
            if sessions[client_id].last_active_ms > cutoff:
                break
            del sessions[client_id]
            dropped += 1
        return dropped

    def to_plain(self) -> list[list[Any]]:
        """Plain values for a snapshot, in a deterministic order (activity order):
        ``[[client_id, first_unanswered, last_active_ms, [[seq, outcome], ...]], ...]``."""
        return [[client_id, s.first_unanswered, s.last_active_ms,
                 [[seq, outcome] for seq, outcome in s.outcomes.items()]]
                for client_id, s in self._sessions.items()]

    def load_plain(self, plain: Any) -> None:
        """Replace the table with ``to_plain`` output.

        Raises:
            ValueError: ``plain`` is not what ``to_plain`` writes (the table is then unchanged).
        """
        sessions: dict[str, _Session] = {}
        if not isinstance(plain, list):
            raise ValueError("sessions: expected a list")
        last_ms = 0
        for row in plain:
            if not (isinstance(row, list) and len(row) == 4):
                raise ValueError("sessions: each row is [client, first, active, outcomes]")
            client_id, first, active, outcomes = row
            if not (isinstance(client_id, str) and 0 < len(client_id) <= MAX_CLIENT_ID_CHARS):
                raise ValueError("sessions: bad client id")
            if type(first) is not int or type(active) is not int or first < 0 or active < 0:
                raise ValueError("sessions: bad counters")
            if active < last_ms or client_id in sessions:
                raise ValueError("sessions: rows not in activity order, or a client twice")
            last_ms = active
            if not isinstance(outcomes, list):
                raise ValueError("sessions: outcomes must be a list")
            session = _Session(first, {}, active)
            previous = first - 1
            for pair in outcomes:
                if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int
                        and pair[0] > previous):
                    raise ValueError("sessions: bad outcome row")
                previous = pair[0]
                session.outcomes[pair[0]] = pair[1]
            sessions[client_id] = session
        self._sessions = sessions


def apply_once(state: QueueState, command: Command, index: int, session: ClientSession,
               reply: bool = True) -> dict[str, Any] | None:
    """Apply a command proposed in a client session, unless it was applied already.

    A new ``(client_id, seq)`` is applied and its outcome recorded, even when nobody here
    waits for it (``reply`` False): this member may lead later and have to answer its repeat.
    A repeat changes nothing (the state, the clock and the table stay as they are) and is
    answered with the first outcome, or, when that outcome was discarded, with a
    ``duplicate_request`` failure. Every member makes the same choice at the same index, so
    states stay equal (Raft paper section 5.3; dissertation section 6.3).

    Args:
        state: the queue state machine.
        command: the command of the committed item.
        index: its queue index (strictly increasing over the commands applied).
        session: the session the item carries.
        reply: False when nobody here waits for the outcome (None is returned then).

    Raises:
        ValueError: as ``QueueState.apply`` (an index that does not increase).
    """
    sessions = state.sessions
    client_id, seq, first_unanswered = session
    prior = sessions.lookup(client_id, seq)
    if prior is None:
        outcome = state.apply(command, index, True)
        clock_ms = state.clock_ms
        sessions.record(client_id, seq, first_unanswered, outcome, clock_ms)
        sessions.expire(clock_ms)
    elif prior is STALE:
        outcome = {"ok": False, "code": DUPLICATE_REQUEST,
                   "message": f"request {seq} of client {client_id} is below the client's first "
                              f"unanswered request: applied or given up earlier, not applied now"}
    else:
        outcome = prior
    return outcome if reply else None
