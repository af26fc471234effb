"""The simulator's toy state machine: a list of values behind the real client sessions.

Every value a simulated client proposes travels with its session header ``(client_id, seq,
first_unanswered, now_ms)`` and goes through ``dqueue.queue.sessions.Sessions``, the one
session implementation the queue state machine uses too (Raft dissertation 6.3): a repeat of a
command already applied (a duplicated PROPOSE, or a client's retry after a leader change) is
answered from the session table and not applied again. Entry data without a header (a test
that proposes to the core directly) is applied as a plain value.

A value may carry a queue command (``encode_value``: ``v<n> <plain command as JSON>``): the
member then applies it to its ``QueueState`` too, the real queue state machine, stamped with the
header's ``now_ms`` (the simulator's clients stand for the leader's stamp), so that named
queues, leases, retries and dead-letter moves run under every fault the simulator injects.

The snapshot holds the values, the session table and the queue state, encoded
deterministically (JSON of plain lists in a fixed order), so that every member that applied the
same log holds the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

from dqueue.queue import QueueConfig, QueueState, command_from_plain
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.sessions import Sessions

#: The queue settings of every simulated member: times are in ticks; the depth bound keeps
#: snapshots small enough to install in chunks within the healing phase.
SIM_QUEUE_CONFIG = QueueConfig(lease_ms=40, max_retries=1, backoff_base_ms=5, backoff_cap_ms=20,
                               retention_ms=300, dedup_window_ms=300, max_depth=40)

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


def encode_value(number: int, command: dict[str, Any] | None = None) -> bytes:
    """The unique value ``v<number>``, carrying a plain queue command when given."""
    if command is None:
        return b"v%d" % number
    return b"v%d " % number + json.dumps(command, separators=(",", ":"),
                                         sort_keys=True).encode()


def value_key(value: bytes) -> bytes:
    """What identifies a value: its bytes up to the first space (``v<n>``), without the
    command it carries. Members keep and clients compare only this."""
    return value.partition(b" ")[0]


def value_command(value: bytes) -> dict[str, Any] | None:
    """The plain queue command a value carries, or None."""
    _, _, text = value.partition(b" ")
    if not text:
        return None
    try:
        command = json.loads(text)
    except ValueError:
        return None
    return command if isinstance(command, dict) else None


def proposal_value(data: bytes) -> bytes:
    """The client value an entry carries (with or without a session header)."""
    decoded = decode_proposal(data)
    return data if decoded is None else decoded[4]


class SimStateMachine:
    """Applied values in log order, and the client sessions.

    Attributes:
        values: the keys (``value_key``) of the values applied, in order (a repeat answered
            by its session is not here).
        present: the same values as a set. Invariant: a value is in ``values`` once, unless a
            duplicate application was counted (see ``apply``).
        sessions: the session table (dissertation 6.3); outcome of a command: its log index.
        answered_repeats: commands answered from the session table instead of applied.
        queue: the queue state the values' commands were applied to.
        refused: queue commands refused (a bad plain form, or an outcome not ``ok``), counted
            on this member since it booted.
    """

    def __init__(self, values: list[bytes] | None = None,
                 sessions: Sessions | None = None, queue: QueueState | None = None) -> None:
        self.values: list[bytes] = values if values is not None else []
        self.present: set[bytes] = set(self.values)
        self.sessions = sessions if sessions is not None else Sessions()
        self.queue = queue if queue is not None else QueueState(SIM_QUEUE_CONFIG)
        self.answered_repeats = 0
        self.refused = 0

    def apply(self, index: int, data: bytes) -> tuple[bytes, bool] | None:
        """Apply the entry at ``index``.

        Returns:
            ``(key, duplicate)`` when the value was applied (``duplicate``: it had been
            applied on this member before), or None when a session answered a repeat.
        """
        decoded = decode_proposal(data)
        now_ms = 0
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
        command = value_command(value)
        value = value_key(value)
        duplicate = value in self.present
        self.present.add(value)
        self.values.append(value)
        if command is not None:
            self._apply_queue(index, {**command, "now_ms": now_ms})
        return value, duplicate

    def _apply_queue(self, index: int, plain: dict[str, Any]) -> None:
        try:
            command = command_from_plain(plain)
        except InvalidCommand:
            self.refused += 1
            return
        outcome = self.queue.apply(command, index)
        if not outcome["ok"]:
            self.refused += 1

    def snapshot(self) -> bytes:
        """The values, the session table and the queue state, deterministically encoded."""
        values = [v.decode("latin-1") for v in self.values]
        return json.dumps([values, self.sessions.to_plain(), self.queue.snapshot().decode()],
                          separators=(",", ":")).encode()

    @classmethod
    def restore(cls, data: bytes) -> SimStateMachine:
        """The state machine a ``snapshot()`` was taken of."""
        values, plain, queue_data = json.loads(data)
        sessions = Sessions()
        sessions.load_plain(plain)
        queue = QueueState(SIM_QUEUE_CONFIG)
        queue.restore(queue_data.encode())
        return cls([v.encode("latin-1") for v in values], sessions, queue)
