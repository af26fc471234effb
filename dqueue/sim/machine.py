"""The simulator's toy state machine: a list of values behind the real client sessions.

Every value a simulated client proposes travels with its session header ``(client_id, seq,
first_unanswered, now_ms)`` and goes through ``dqueue.queue.sessions.Sessions``, the one
session implementation the queue state machine uses too (Raft dissertation 6.3): a repeat of a
command already applied (a duplicated PROPOSE, or a client's retry after a leader change) is
answered from the session table and not applied again. Entry data without a header (a test
that proposes to the core directly) is applied as a plain value.

The snapshot holds the values and the session table, encoded deterministically (JSON of plain
lists in a fixed order), so that every member that applied the same log holds the same bytes.
"""

from __future__ import annotations

import json

from dqueue.queue.sessions import Sessions

#: Entry data that starts with this carries a session header (no client value starts with it).
SESSION_MARK = b"\x00s "


def encode_proposal(client_id: str, seq: int, first_unanswered: int, now_ms: int,
                    value: bytes) -> bytes:
    """Entry data of a client's command: the session header, then the value."""
    return SESSION_MARK + b"%s %d %d %d " % (client_id.encode(), seq, first_unanswered,
                                             now_ms) + value


def decode_proposal(data: bytes) -> tuple[str, int, int, int, bytes] | None:
    """``(client_id, seq, first_unanswered, now_ms, value)``, or None for plain data."""
    if not data.startswith(SESSION_MARK):
        return None
    client, seq, first, now, value = data[len(SESSION_MARK):].split(b" ", 4)
    return client.decode(), int(seq), int(first), int(now), value


def proposal_value(data: bytes) -> bytes:
    """The client value an entry carries (with or without a session header)."""
    decoded = decode_proposal(data)
    return data if decoded is None else decoded[4]


class SimStateMachine:
    """Applied values in log order, and the client sessions.

    Attributes:
        values: the values applied, in order (a repeat answered by its session is not here).
        present: the same values as a set. Invariant: a value is in ``values`` once, unless a
            duplicate application was counted (see ``apply``).
        sessions: the session table (dissertation 6.3); outcome of a command: its log index.
        answered_repeats: commands answered from the session table instead of applied.
    """

    def __init__(self, values: list[bytes] | None = None,
                 sessions: Sessions | None = None) -> None:
        self.values: list[bytes] = values if values is not None else []
        self.present: set[bytes] = set(self.values)
        self.sessions = sessions if sessions is not None else Sessions()
        self.answered_repeats = 0

    def apply(self, index: int, data: bytes) -> tuple[bytes, bool] | None:
        """Apply the entry at ``index``.

        Returns:
            ``(value, duplicate)`` when the value was applied (``duplicate``: it had been
            applied on this member before), or None when a session answered a repeat.
        """
        decoded = decode_proposal(data)
        if decoded is None:
            value = data
        else:
            client_id, seq, first_unanswered, now_ms, value = decoded
            # A repeat is answered with the first outcome (or is STALE: answered and
            # acknowledged): applying it again would execute the command twice (6.3).
            if self.sessions.lookup(client_id, seq) is not None:
                self.answered_repeats += 1
                return None
            self.sessions.record(client_id, seq, first_unanswered, index, now_ms)
        duplicate = value in self.present
        self.present.add(value)
        self.values.append(value)
        return value, duplicate

    def snapshot(self) -> bytes:
        """The values and the session table, deterministically encoded."""
        values = [v.decode("latin-1") for v in self.values]
        return json.dumps([values, self.sessions.to_plain()], separators=(",", ":")).encode()

    @classmethod
    def restore(cls, data: bytes) -> SimStateMachine:
        """The state machine a ``snapshot()`` was taken of."""
        values, plain = json.loads(data)
        sessions = Sessions()
        sessions.load_plain(plain)
        return cls([v.encode("latin-1") for v in values], sessions)
