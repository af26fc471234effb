"""A member's mark in its key folder: "this id and key have taken part in a cluster".

Raft's safety rests on every member's disk keeping the vote it cast and the entries it
acknowledged (Raft figure 2). A member started again under its id and key on an *empty* data
directory (a lost disk, a deleted folder) has forgotten both: it could vote twice in a term and
let an election pass over a committed entry. Its store alone cannot tell: an empty directory
looks like a new member's. But the key folder (``--secure-dir``) usually lives elsewhere and
survives, and in a cluster with keys a member *is* its key (docs/security.md). So the node
writes a small marker file there, ``<id>.member``, before its first promise leaves it (after
the first Ready that persisted a term, and before that Ready's messages are sent), and a node
whose store is empty refuses to start when the marker exists, with ``--join`` too (its id is
still in the configuration: it would be asked for votes and acknowledgements as before). If the
key folder is lost too, the member needs new keys: the others refuse the new key until it is
added, so no forgotten promise can count. A cluster without keys has no marker:
docs/operations.md says not to reuse an id on an empty data directory there.
"""

from __future__ import annotations

import os

from dqueue.node.store import LoadedState, Store


class ForgottenMember(Exception):
    """The store is empty but this id and key have been a member: the message says what to do."""


def marker_path(secure_dir: str, node_id: str) -> str:
    """Where the marker of member ``node_id`` lives in its key folder."""
    return os.path.join(secure_dir, f"{node_id}.member")


def is_empty(loaded: LoadedState) -> bool:
    """Whether a store holds nothing a member promised: no term, no entry, no snapshot."""
    hard = loaded.hard_state
    return ((hard is None or hard.term == 0) and not loaded.entries
            and loaded.snapshot is None)


class MemberMarker:
    """Checks the marker at start and writes it once, when the store first holds a term.

    Args:
        secure_dir: the key folder ("" in a cluster without keys: nothing is checked).
        node_id: this member's id.
    """

    def __init__(self, secure_dir: str, node_id: str) -> None:
        self.path = marker_path(secure_dir, node_id) if secure_dir else None
        self.written = self.path is None or os.path.exists(self.path)

    def check_start(self, loaded: LoadedState) -> None:
        """Refuse an empty store under an id and key that have been a member; mark a store
        that is not empty (written by a version without markers).

        Raises:
            ForgottenMember: the store is empty and the marker exists.
        """
        if self.path is None:
            return
        if not is_empty(loaded):
            self.note_term(1)
            return
        if self.written:
            raise ForgottenMember(
                f"the data directory is empty, but {self.path} says this member's id and key "
                "have been part of a cluster: its vote and acknowledged entries are lost, and "
                "starting it could lose committed tasks. Restore its data directory; or replace "
                "it: start a new member (new id and keys) with --join, add it with "
                "`dqueue-cli cluster add`, then `dqueue-cli cluster remove` this one "
                "(docs/operations.md, \"Replacing a dead member\"). Only when every member's "
                f"data is gone and the cluster is created anew: delete {self.path}.")

    def note_term(self, term: int) -> None:
        """Call after each persisted Ready, before its messages are sent: write the marker
        (synced, with its folder) the first time the store holds a term."""
        if self.written or term == 0:
            return
        assert self.path is not None
        temporary = self.path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            out.write("this member has persisted Raft state; see dqueue/node/member_marker.py\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
        folder = os.open(os.path.dirname(self.path) or ".", os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        self.written = True


def checked_marker(secure_dir: str, node_id: str, loaded: LoadedState,
                   store: Store) -> MemberMarker:
    """The marker of a node that just loaded ``store``, checked (``check_start``).

    Raises:
        ForgottenMember: as ``check_start``, once ``store`` is closed.
    """
    marker = MemberMarker(secure_dir, node_id)
    try:
        marker.check_start(loaded)
    except ForgottenMember:
        store.close()
        raise
    return marker
