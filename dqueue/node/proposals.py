"""Entry-level group commit: the commands a leader takes in during one loop turn share one entry.

Every command the node proposes is stamped and encoded once, as one item ``[rid, cmd]`` (or
``[rid, cmd, client_id, seq, first_unanswered]`` for a client request: its session, so the state
machine applies it once however often it is proposed), and appended to the open batch;
``flush`` proposes the batch as ONE Raft log entry whose data is a msgpack array of those items
(the item bytes are concatenated behind an array header, so nothing is encoded twice). The
per-entry costs (the core's entry and append bookkeeping, the LMDB put and its CRC, the entry
in every AppendEntries, the followers' decoding and persistence, commit and apply bookkeeping)
are then paid once per batch instead of once per command.

Every member applies the items of a committed batch in order, each at its own queue index
``entry.index * COMMAND_INDEX_STRIDE + position`` (the queue state machine needs one strictly
increasing index per command, and its lease tokens derive from it), so the state machine stays
deterministic: same log, same indexes, same outcomes. A waiting request is answered only when
an applied item carries its request id, exactly as with one command per entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dqueue.node.codec import encode_item, join_items
from dqueue.queue import Command
from dqueue.queue.sessions import ClientSession
from dqueue.raft import ProposalDropped

# Queue index of a command = entry index * COMMAND_INDEX_STRIDE + its position in the entry.
COMMAND_INDEX_STRIDE = 1 << 16
# Items per batch entry, at most; below the stride so that queue indexes never overlap.
MAX_BATCH_COMMANDS = 4_096
# Bound on the batches whose parsed commands are kept until they apply. Backpressure keeps at
# most about 1,024 proposed commands unapplied, so more than this many are batches that will
# never apply here as proposed (lost to a leader change).
MAX_PARSED_BATCHES = 1_024
# What take_parsed gives back: the request ids, parsed commands and sessions of one entry.
Parsed = tuple[list[str], list[Command], list[ClientSession | None]]


class ProposalBatcher:
    """The open batch of one node, and the parsed commands of the batches it proposed.

    Args:
        max_bytes: a batch is proposed as soon as adding an item would take it past this
            many bytes (half of ``max_append_bytes``, so one batch always fits an append).
        propose: the core's ``propose(data)``; may raise ``ProposalDropped``.
        on_dropped: called with the request ids of a batch the core refused, so that their
            requests wait for a leader again instead of for an entry that will never exist.
        observe: called with the number of commands of each entry proposed (a histogram).
    """

    def __init__(self, max_bytes: int, propose: Callable[[bytes], None],
                 on_dropped: Callable[[list[str]], None],
                 observe: Callable[[float], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self._propose = propose
        self._on_dropped = on_dropped
        self._observe = observe
        self._items: list[bytes] = []
        self._rids: list[str] = []
        self._commands: list[Command | None] = []
        self._sessions: list[ClientSession | None] = []
        self._bytes = 0
        self._all_parsed = True
        # Entry data -> the request ids, parsed commands and sessions of its items, for the
        # entries this node proposed with every command parsed: their apply decodes nothing.
        self._parsed: dict[bytes, Parsed] = {}
        self.entries_proposed = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, rid: str, cmd: dict[str, Any], command: Command | None = None,
            session: ClientSession | None = None) -> None:
        """Append one stamped command to the open batch (proposing the batch first if full).

        Args:
            rid: the request id the item carries ("" for the node's own commands).
            cmd: the plain command, stamped with ``now_ms``.
            command: the same command already parsed (with the same ``now_ms``), if known:
                kept until the entry with these exact bytes applies, so that the entry is
                neither decoded nor parsed again on this node.
            session: the client session of a client request (None for the node's own).
        """
        item = encode_item(rid, cmd, session)
        if self._items and (self._bytes + len(item) > self.max_bytes
                            or len(self._items) >= MAX_BATCH_COMMANDS):
            self.flush()
        self._items.append(item)
        self._rids.append(rid)
        self._commands.append(command)
        self._sessions.append(session)
        self._bytes += len(item)
        self._all_parsed = self._all_parsed and command is not None

    def flush(self) -> int:
        """Propose the open batch as one entry; return how many commands it carried."""
        if not self._items:
            return 0
        items, rids, commands = self._items, self._rids, self._commands
        sessions = self._sessions
        all_parsed = self._all_parsed
        self._items, self._rids, self._commands, self._sessions = [], [], [], []
        self._bytes, self._all_parsed = 0, True
        data = join_items(items)
        try:
            self._propose(data)
        except ProposalDropped:
            self._on_dropped([rid for rid in rids if rid])
            return 0
        self.entries_proposed += 1
        if self._observe is not None:
            self._observe(len(items))
        if all_parsed:
            if len(self._parsed) >= MAX_PARSED_BATCHES:
                self._parsed.clear()  # entries lost to a leader change; decoded if applied
            self._parsed[data] = (rids, commands, sessions)  # type: ignore[assignment]
        return len(items)

    def forget_parsed(self) -> None:
        """Drop the parsed commands kept (this node stopped leading: its batches that still
        commit are decoded like any other entry)."""
        self._parsed.clear()

    def take_parsed(self, data: bytes) -> Parsed | None:
        """The request ids, parsed commands and sessions of the batch entry with exactly these
        bytes,
        if this node proposed it with every command parsed (forgotten afterwards)."""
        if not self._parsed:
            return None
        return self._parsed.pop(data, None)
