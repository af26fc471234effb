"""Membership changes: one server at a time, through the log (thesis section 4.1).

A change is one CONF_CHANGE entry. Its data carries the change and the whole configuration it
produces (``encode_conf_entry``), so a member that never saw an earlier configuration (one
that joins with an empty log) learns the full configuration from the first conf entry it
appends. A configuration takes effect on a member as soon as the entry is appended to its
log, not when it commits (thesis 4.1); a truncated entry reverts the member to the
configuration before it, so each member keeps its configurations by index
(``ConfigHistory``).

Everything read here comes from the log or the network: every decoder is strict and raises
ValueError, and nothing else, on any malformed input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from dqueue.raft.types import MAX_CONTEXT_BYTES, MAX_ID_CHARS, MAX_MEMBERS, Membership

__all__ = [
    "ConfChange",
    "ConfChangeKind",
    "ConfigHistory",
    "Membership",
    "apply_conf_change",
    "decode_conf_change",
    "decode_conf_entry",
    "decode_membership",
    "encode_conf_change",
    "encode_conf_entry",
    "encode_membership",
]

# Format version of every encoding here (first byte).
_VERSION = 1
_U16 = struct.Struct(">H")


class ConfChangeKind(IntEnum):
    """What a change does to one member."""

    ADD_LEARNER = 0  # a new member joins without a vote (etcd-io/raft's learners)
    PROMOTE = 1  # a learner becomes a voter
    REMOVE = 2  # a voter or learner leaves


@dataclass(frozen=True, slots=True)
class ConfChange:
    """One single-server change (thesis 4.1).

    Attributes:
        kind: what happens to ``node_id``.
        node_id: the member changed.
        context: opaque bytes the node attaches to a member it adds (addresses, public key),
            at most ``MAX_CONTEXT_BYTES``; kept with the member in the configuration. Only
            ADD_LEARNER sets it; the others keep the member's context.
    """

    kind: ConfChangeKind
    node_id: str
    context: bytes = b""


def apply_conf_change(m: Membership, c: ConfChange) -> Membership:
    """The configuration ``c`` makes of ``m``.

    Raises:
        ValueError: ``c`` does not fit ``m``: adding a member that exists, promoting a
            member that is not a learner, removing an unknown member or the last voter, an
            id or context out of bounds, or more than ``MAX_MEMBERS`` members.
    """
    node_id = c.node_id
    if type(node_id) is not str or not 0 < len(node_id) <= MAX_ID_CHARS:
        raise ValueError(f"node_id: expected 1 to {MAX_ID_CHARS} characters")
    if type(c.context) is not bytes or len(c.context) > MAX_CONTEXT_BYTES:
        raise ValueError(f"context: expected bytes, at most {MAX_CONTEXT_BYTES}")
    voters, learners = m.voters, m.learners
    contexts = dict(m.contexts)
    if c.kind is ConfChangeKind.ADD_LEARNER:
        if m.is_member(node_id):
            raise ValueError(f"{node_id!r} is a member already")
        if len(voters) + len(learners) >= MAX_MEMBERS:
            raise ValueError(f"at most {MAX_MEMBERS} members")
        learners = (*learners, node_id)
        if c.context:
            contexts[node_id] = c.context
    elif c.kind is ConfChangeKind.PROMOTE:
        if not m.is_learner(node_id):
            raise ValueError(f"{node_id!r} is not a learner")
        learners = tuple(x for x in learners if x != node_id)
        voters = (*voters, node_id)
    elif c.kind is ConfChangeKind.REMOVE:
        if not m.is_member(node_id):
            raise ValueError(f"{node_id!r} is not a member")
        if voters == (node_id,):
            raise ValueError("cannot remove the last voter")
        voters = tuple(x for x in voters if x != node_id)
        learners = tuple(x for x in learners if x != node_id)
        contexts.pop(node_id, None)
    else:
        raise ValueError("kind: unknown change kind")
    return Membership(voters, learners, tuple(sorted(contexts.items())))


# ------------------------------------------------------------------- encodings


class _Reader:
    """A strict cursor over bytes: every read past the end raises ValueError."""

    def __init__(self, data: bytes) -> None:
        if type(data) is not bytes:
            raise ValueError("expected bytes")
        self.data = data
        self.pos = 0

    def take(self, n: int, name: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ValueError(f"{name}: truncated")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u16(self, name: str) -> int:
        return _U16.unpack(self.take(2, name))[0]

    def byte(self, name: str) -> int:
        return self.take(1, name)[0]

    def ident(self, name: str) -> str:
        raw = self.take(self.u16(name), name)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{name}: not UTF-8") from exc
        if not 0 < len(value) <= MAX_ID_CHARS:
            raise ValueError(f"{name}: expected 1 to {MAX_ID_CHARS} characters")
        return value

    def blob(self, name: str) -> bytes:
        n = self.u16(name)
        if n > MAX_CONTEXT_BYTES:
            raise ValueError(f"{name}: more than {MAX_CONTEXT_BYTES} bytes")
        return self.take(n, name)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ValueError("trailing bytes")


def _ident(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _U16.pack(len(raw)) + raw


def _blob(value: bytes) -> bytes:
    return _U16.pack(len(value)) + value


def _change_bytes(c: ConfChange) -> bytes:
    return bytes((int(c.kind),)) + _ident(c.node_id) + _blob(c.context)


def _read_change(r: _Reader) -> ConfChange:
    kind = r.byte("kind")
    if kind not in ConfChangeKind._value2member_map_:
        raise ValueError("kind: unknown change kind")
    return ConfChange(ConfChangeKind(kind), r.ident("node_id"), r.blob("context"))


def _membership_bytes(m: Membership) -> bytes:
    out = [bytes((len(m.voters), len(m.learners), len(m.contexts)))]
    out += [_ident(v) for v in m.voters]
    out += [_ident(v) for v in m.learners]
    out += [_ident(k) + _blob(v) for k, v in m.contexts]
    return b"".join(out)


def _read_membership(r: _Reader) -> Membership:
    n_voters, n_learners, n_contexts = r.byte("voters"), r.byte("learners"), r.byte("contexts")
    if n_voters + n_learners > MAX_MEMBERS or n_contexts > n_voters + n_learners:
        raise ValueError(f"membership: at most {MAX_MEMBERS} members")
    voters = tuple(r.ident("voters") for _ in range(n_voters))
    learners = tuple(r.ident("learners") for _ in range(n_learners))
    contexts = tuple((r.ident("contexts"), r.blob("contexts")) for _ in range(n_contexts))
    members = set(voters) | set(learners)
    if len(members) != n_voters + n_learners:
        raise ValueError("membership: ids must be distinct")
    keys = [k for k, _ in contexts]
    if keys != sorted(set(keys)) or not set(keys) <= members:
        raise ValueError("membership: contexts must be sorted, distinct and of members")
    return Membership(voters, learners, contexts)


def encode_conf_change(c: ConfChange) -> bytes:
    """``c`` as bytes (``decode_conf_change`` reads them back)."""
    return bytes((_VERSION,)) + _change_bytes(c)


def decode_conf_change(data: bytes) -> ConfChange:
    """The change ``encode_conf_change`` wrote. Raises ValueError on anything malformed."""
    r = _Reader(data)
    if r.byte("version") != _VERSION:
        raise ValueError("version: unknown")
    change = _read_change(r)
    r.end()
    return change


def encode_membership(m: Membership) -> bytes:
    """``m`` as bytes (``decode_membership`` reads them back)."""
    return bytes((_VERSION,)) + _membership_bytes(m)


def decode_membership(data: bytes) -> Membership:
    """The configuration ``encode_membership`` wrote. Raises ValueError when malformed."""
    r = _Reader(data)
    if r.byte("version") != _VERSION:
        raise ValueError("version: unknown")
    m = _read_membership(r)
    r.end()
    return m


def encode_conf_entry(c: ConfChange, after: Membership) -> bytes:
    """The data of a CONF_CHANGE entry: the change and the configuration it produces."""
    return bytes((_VERSION,)) + _change_bytes(c) + _membership_bytes(after)


def decode_conf_entry(data: bytes) -> tuple[ConfChange, Membership]:
    """The change and configuration of a CONF_CHANGE entry's data.

    Raises:
        ValueError: malformed, or the configuration has no voter, or it does not hold the
            change's outcome (a removed member still there, an added one missing).
    """
    r = _Reader(data)
    if r.byte("version") != _VERSION:
        raise ValueError("version: unknown")
    change = _read_change(r)
    after = _read_membership(r)
    r.end()
    if not after.voters:
        raise ValueError("membership: no voter")
    present = after.is_member(change.node_id)
    if present == (change.kind is ConfChangeKind.REMOVE):
        raise ValueError("membership: does not match the change")
    if change.kind is ConfChangeKind.PROMOTE and not after.is_voter(change.node_id):
        raise ValueError("membership: the promoted member is not a voter")
    return change, after


# ------------------------------------------------------------------- history


class ConfigHistory:
    """The configurations of one member's log, by the index of the entry that set them.

    The first item is the base: the snapshot's configuration at its index, or the bootstrap
    voters at index 0 (empty for a member that joins). Invariant: indexes strictly increase;
    the last item is the configuration in force (thesis 4.1: the latest in the log, committed
    or not).
    """

    __slots__ = ("items",)

    def __init__(self, base_index: int, base: Membership) -> None:
        self.items: list[tuple[int, Membership]] = [(base_index, base)]

    def current(self) -> Membership:
        """The configuration in force."""
        return self.items[-1][1]

    def last_index(self) -> int:
        """Index of the entry that set the configuration in force (the base's index if none)."""
        return self.items[-1][0]

    def at(self, index: int) -> Membership:
        """The configuration in force at ``index`` (for a snapshot taken there)."""
        found = self.items[0][1]
        for item_index, m in self.items:
            if item_index > index:
                break
            found = m
        return found

    def index_at(self, index: int) -> int:
        """Index of the entry that set the configuration in force at ``index`` (the base's
        index when none did)."""
        found = self.items[0][0]
        for item_index, _ in self.items:
            if item_index > index:
                break
            found = item_index
        return found

    def append(self, index: int, m: Membership) -> None:
        """A conf entry at ``index`` (above every one held) set ``m``."""
        if index <= self.items[-1][0]:
            raise AssertionError("configuration indexes must increase")
        self.items.append((index, m))

    def truncate_from(self, index: int) -> None:
        """Entries at ``index`` and above are gone: their configurations with them."""
        while len(self.items) > 1 and self.items[-1][0] >= index:
            self.items.pop()

    def reset(self, base_index: int, base: Membership) -> None:
        """A snapshot replaced the log: start again from its configuration."""
        self.items = [(base_index, base)]

    def compact(self, index: int) -> None:
        """The log up to ``index`` is compacted: keep only what may still be asked."""
        while len(self.items) > 1 and self.items[1][0] <= index:
            self.items.pop(0)
