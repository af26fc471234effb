"""The worker gateway's ack coalescing: acks held briefly so that many share one command.

Every worker ack would otherwise be a log entry of its own. The gateway holds the acks it reads
for up to ``window`` (or until ``MAX_ACK_BATCH`` are held) and sends them as one ``ack_batch``
command; while an ack command is in flight, newer acks wait for its answer (at most
``MAX_ACK_HOLD_MS``), which batches more under load at no cost when idle. An ``ack_many``
message's items are held one by one and answered together (``AckGroup``).

This module holds the policy and the bookkeeping only; the gateway (``dqueue/api/gateway.py``)
owns the sockets and sends what it decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dqueue.protocol.errors import ErrorCode

ACK_WINDOW_MS = 2  # longest an ack waits for others to share its command, if none is in flight
MAX_ACK_COMMANDS_IN_FLIGHT = 1  # more held acks wait for the answer to this many ack commands
MAX_ACK_HOLD_MS = 20  # ... but no ack is held longer than this
# Held acks go once their worker messages took this many bytes: acks that carry results
# (dqueue/queue/results.py, up to api.max_result_bytes each) make one entry of at most about
# this much, as raft.max_append_bytes (1 MiB) expects, instead of up to MAX_ACK_BATCH results.
MAX_ACK_BATCH_BYTES = 1 << 20


@dataclass
class AckGroup:
    """The acks of one ``ack_many`` message: answered with one ``acked`` once all are settled.

    ``results`` holds, in item order, None for an ack done and ``{"code", "message"}`` for one
    refused; ``remaining`` counts the items not settled yet.
    """

    identity: bytes
    rid: Any
    results: list[dict[str, str] | None]
    remaining: int

    def settle(self, position: int, result: dict[str, str] | None) -> bool:
        """Record one item's result; whether every item now has one (time to answer)."""
        self.results[position] = result
        self.remaining -= 1
        return self.remaining == 0


# One held ack: who waits for it (the gateway's ``Pending`` of a lone ``ack`` request, or an
# ``AckGroup`` and the item's position in it) and its ``ack_batch`` item.
HeldAck = tuple[Any, int, dict[str, Any]]


class AckHold:
    """The acks held for the next ack command, and when they may go.

    Args:
        window_ms: longest an ack is held for others to share its command when no ack command
            is in flight (0: only the acks read in the same poll turn share it).
        max_batch: the most acks one command carries; holding that many sends them at once.
    """

    def __init__(self, window_ms: int, max_batch: int,
                 max_bytes: int = MAX_ACK_BATCH_BYTES) -> None:
        self._window_s = window_ms / 1000
        self._max_batch = max_batch
        self._max_bytes = max_bytes
        self.held: list[HeldAck] = []
        self._held_bytes = 0  # Invariant: the sum of the sizes hold() was given since take()
        self._due = 0.0  # when the held acks may go, set by the first one held
        self._held_since = 0.0
        # Invariant: the ack commands sent and not yet answered or expired (command_sent minus
        # command_done).
        self.in_flight = 0

    def hold(self, held: HeldAck, now: float, size_bytes: int = 0) -> bool:
        """Hold one ack whose message took ``size_bytes``; whether the batch is now full (by
        count or by bytes: the caller sends it at once)."""
        if not self.held:
            self._due = now + self._window_s
            self._held_since = now
        self.held.append(held)
        self._held_bytes += size_bytes
        return len(self.held) >= self._max_batch or self._held_bytes >= self._max_bytes

    def may_go(self, now: float) -> bool:
        """Held acks go once their window is over and no ack command is in flight, or once
        the first of them was held for ``MAX_ACK_HOLD_MS``."""
        return bool(self.held) and now >= self._due and (
            self.in_flight < MAX_ACK_COMMANDS_IN_FLIGHT
            or now >= self._held_since + MAX_ACK_HOLD_MS / 1000)

    def poll_ms(self, now: float, longest_ms: int) -> int:
        """How long the gateway's poll may wait: at most ``longest_ms``, and no later than the
        window's end or, once past it, the longest hold (an answer wakes the poll sooner)."""
        if not self.held:
            return longest_ms
        due = self._due
        if now >= due:
            due = self._held_since + MAX_ACK_HOLD_MS / 1000
        return max(0, min(longest_ms, math.ceil((due - now) * 1000)))

    def take(self) -> list[HeldAck]:
        """The held acks, now to be sent as one command; nothing is held after."""
        acks, self.held = self.held, []
        self._held_bytes = 0
        return acks

    def command_sent(self) -> None:
        """An ack command went to the Raft process."""
        self.in_flight += 1

    def command_done(self) -> None:
        """An ack command was answered, or its answer given up on."""
        self.in_flight -= 1


def batch_results(outcome: dict[str, Any], count: int) -> list[dict[str, Any]] | None:
    """Each of an ``ack_batch``'s ``count`` acks' outcome, in item order: its own item of a
    committed batch, or the batch's refusal for all; None when the answer is unreadable (the
    Raft process sent a result list of the wrong length or shape)."""
    if not outcome.get("ok"):
        return [outcome] * count
    value = outcome.get("value")
    results = value.get("results") if isinstance(value, dict) else None
    if not (isinstance(results, list) and len(results) == count
            and all(isinstance(r, dict) for r in results)):
        return None
    return results


def refusal(result: dict[str, Any]) -> dict[str, str] | None:
    """An ``ack_many`` item's result from its ack's outcome: None when done, else its code and
    message."""
    if result.get("ok"):
        return None
    return {"code": str(result.get("code") or ErrorCode.INVALID),
            "message": str(result.get("message"))}
