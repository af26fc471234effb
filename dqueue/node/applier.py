"""Applying committed entries to the queue state machine, as every member does, in log order.

Each batch entry carries items (request id, command, client session); each item applies at its
own queue index, ``entry.index * COMMAND_INDEX_STRIDE + position``: strictly increasing and the
same on every member, so every member computes the same state (Raft section 5.3). Nothing
committed is ever skipped: an entry or item that does not apply stops the member
(``ApplyFailed``).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Any

from dqueue.node.apply_failed import ApplyFailed
from dqueue.node.codec import decode_entry_items
from dqueue.node.proposals import COMMAND_INDEX_STRIDE, Parsed
from dqueue.queue import QueueState
from dqueue.queue.log_commands import command_from_log
from dqueue.queue.sessions import apply_once
from dqueue.raft import Entry, EntryType


def apply_entries(entries: Sequence[Entry], queue: QueueState,
                  take_parsed: Callable[[bytes], Parsed | None], waiting: Container[str],
                  on_applied: Callable[[str, Any], None]) -> int:
    """Apply committed ``entries`` to ``queue``; return how many commands they carried.

    Args:
        entries: committed entries, in log order, none applied yet.
        queue: the state machine.
        take_parsed: the parsed items of an entry this node proposed with exactly these bytes
            (``ProposalBatcher.take_parsed``), else None.
        waiting: the request ids someone on this node waits for (checked item by item).
        on_applied: called with a waited-for item's request id and outcome.

    Raises:
        ApplyFailed: an entry that does not decode, or an item that does not apply.
    """
    applied_commands = 0
    for entry in entries:
        # Only NORMAL entries carry queue commands: a NOOP (Raft 5.4.2) and a CONF_CHANGE
        # (dissertation 4.1, applied by the core itself when appended) have none.
        if entry.type is not EntryType.NORMAL or not entry.data:
            continue
        # An entry this node proposed (same bytes) needs no decoding: its request ids and
        # parsed commands were kept; any other entry is decoded and parsed here.
        plain: list[Any] = []
        proposed = take_parsed(entry.data)
        if proposed is not None:
            rids, commands, sessions = proposed
        else:
            commands = None
            try:
                rids, plain, sessions = decode_entry_items(entry.data)
            except ValueError as exc:
                # Never expected (only this node's batches are proposed), and never skipped: a
                # member that skips an entry diverges (apply_failed.py).
                raise ApplyFailed(entry.index, None, str(exc)) from exc
        base = entry.index * COMMAND_INDEX_STRIDE
        for position, rid in enumerate(rids):
            try:
                command = (commands[position] if commands is not None
                           else command_from_log(plain[position]))
                # Nobody here waits for an item whose request is not pending (a follower's
                # share of the log): no outcome is returned for it.
                reply = bool(rid) and rid in waiting
                # A session's command applies once, its outcome kept even when nobody waits
                # here: this member may lead and answer a repeat (sessions.py).
                session = sessions[position]
                outcome = (queue.apply(command, base + position, reply) if session is None
                           else apply_once(queue, command, base + position, session, reply))
            except Exception as exc:
                # Deliberately any exception, turned into the one error that stops the member:
                # whatever fails here (InvalidCommand, or a bug in apply) fails again on every
                # replay, and skipping it diverges (apply_failed.py).
                raise ApplyFailed(entry.index, position,
                                  f"{exc.__class__.__name__}: {exc}") from exc
            if reply:
                # The reply only when the committed entry carries this request id.
                on_applied(rid, outcome)
        applied_commands += len(rids)
    return applied_commands
