"""Open a node's store, repairing a corrupt one when the operator asked for it (``--repair``).

A log record or snapshot that fails its checksum stops the node (``CorruptRecord``). Deleting
the data directory to rejoin from the peers would be unsafe: the node would forget the vote it
cast in the current term (it could vote twice and let two leaders share a term), and it would
forget entries it acknowledged (an election could then pass over a committed entry). The repair
keeps what makes rejoining safe: it wipes only the log and the snapshot, keeps the term, the vote
and the members, and stores the old last index as the catch-up index, below which the Raft core
neither votes nor campaigns (docs/raft.md, "Repair"). The leader then refills the log with
appends or a snapshot. It needs a healthy majority among the other members.
"""

from __future__ import annotations

import logging

from dqueue.logs import log_event
from dqueue.node.store import CorruptRecord, LoadedState, Store

logger = logging.getLogger(__name__)


class RepairRefused(Exception):
    """The store is corrupt and cannot be repaired here; the message says what to do."""


def open_store(data_dir: str, repair: bool, member_count: int) -> tuple[Store, LoadedState]:
    """Open and load the store; with ``repair``, wipe a corrupt log and load again.

    Raises:
        DataDirLocked: another process holds the data directory (``datadir_lock.py``).
        CorruptRecord: the store is corrupt and ``repair`` is off.
        RepairRefused: ``repair`` is on but a repair would lose data or is not safe.
    """
    store = Store(data_dir)
    try:
        return store, store.load()
    except CorruptRecord as exc:
        if not repair:
            store.close()
            raise
        if member_count < 2:
            store.close()
            raise RepairRefused(
                f"{exc}. --repair refused: this is a single-node cluster, so its log exists "
                "nowhere else; restore the data directory from a backup") from exc
        try:
            catch_up_index = store.repair()
        except CorruptRecord as meta:
            store.close()
            raise RepairRefused(
                f"{meta}. --repair refused: a repair keeps this record, and it is corrupt") from exc
        log_event(logger, logging.WARNING, "store_repaired", error=str(exc), index=exc.index,
                  catch_up_index=catch_up_index)
        return store, store.load()
