"""The one error that stops a Raft process on purpose while it runs: a committed entry that
cannot be applied.

Every member applies the same log in the same order (Raft section 5.3, State Machine Safety);
a member that skipped an entry would silently hold a different queue from then on. So the
process stops instead (exit status 2, ``dqueue/node/__main__.py``), and the supervisor does not
restart it: the same entry would fail again (docs/raft-process.md, "Apply errors").
"""

from __future__ import annotations


class ApplyFailed(Exception):
    """A committed entry failed to decode or to apply.

    Attributes:
        index: the log index of the entry.
        position: the item of the entry's batch that failed, or None when the entry as a whole
            did not decode.
        cause: what went wrong.
    """

    def __init__(self, index: int, position: int | None, cause: str) -> None:
        where = f"entry {index}" if position is None else f"entry {index}, item {position}"
        super().__init__(
            f"committed log {where} cannot be applied: {cause}; stopping this member, which "
            "would otherwise diverge from the others (see docs/raft-process.md, Apply errors)")
        self.index = index
        self.position = position
        self.cause = cause
