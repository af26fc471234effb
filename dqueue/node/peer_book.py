"""Who this node talks to: the members of the configuration in force, where they listen, and
(with keys) the public key each one must present.

The configuration comes from the Raft core (``Raft.membership`` and ``Raft.peers``: the
members in force and, until a change commits, those of the committed configuration, so a
removed member still gets the entry that removes it). For each member:

- its raft address is the one in its context (``dqueue/protocol/member_context.py``: every
  member added online carries one), else the one ``--peers`` gives (the bootstrap members),
  else the one its hello announced (hello.py). A member with no address yet is still heard,
  so its hello can arrive: a member that joined without ``--peers`` learns the bootstrap
  members' addresses this way, and answers their vote requests;
- with keys, its public key is the one in its context, else the one in this node's key folder
  (``DIR/members/<id>.key``: the bootstrap members'). A member with neither gets no
  connection and its handshakes are refused.

A member that joins (``--join``) has no configuration until the leader sends one: until then
it connects to every member ``--peers`` names and hears any member id (with keys: any key of
its key folder, which the ZAP handler checks).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from dqueue.logs import log_event
from dqueue.protocol.member_context import MemberContext, context_or_none
from dqueue.raft import Membership
from dqueue.raft.types import MAX_MEMBERS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerTargets:
    """What the transport should do now (``PeerTransport.set_peers``)."""

    addresses: dict[str, str]  # member id -> raft address, this node included
    keys: dict[str, bytes] | None  # member id -> Z85 public key (with keys)
    hear_any_member: bool  # a member that joins, before it knows its configuration
    http: dict[str, str]  # member id -> HTTP address its context gives
    heard: tuple[str, ...] = ()  # members heard though no address is known for them yet


class PeerBook:
    """The addresses and trusted keys of one node.

    Args:
        node_id: this node's member id.
        configured: member id -> raft address from ``--peers`` (this node included).
        folder_keys: member id -> public key of every key in the key folder (None: no keys).
    """

    def __init__(self, node_id: str, configured: Mapping[str, str],
                 folder_keys: Mapping[str, bytes] | None) -> None:
        self.node_id = node_id
        self.configured = dict(configured)
        self.folder_keys = dict(folder_keys) if folder_keys is not None else None
        self._warned: set[str] = set()
        # member id -> raft address announced in its hello (members with no other address).
        self.announced: dict[str, str] = {}
        self._unaddressed: frozenset[str] = frozenset()
        self._joining = False

    def learn(self, member_id: str, raft_addr: str) -> bool:
        """A member's hello announced ``raft_addr``: True when that gives a member of the
        configuration (or, while joining, any member) an address it lacked or changes the
        one it announced before, so the targets must be computed again. Bounded: only members
        without another address, at most MAX_MEMBERS of them."""
        if member_id == self.node_id or self.announced.get(member_id) == raft_addr:
            return False
        if member_id not in self._unaddressed and not (
                self._joining and member_id not in self.configured):
            return False
        if member_id not in self.announced and len(self.announced) >= MAX_MEMBERS:
            return False
        self.announced[member_id] = raft_addr
        return True

    def targets(self, membership: Membership, peers: tuple[str, ...]) -> PeerTargets:
        """Where to connect and whom to admit for the configuration in force.

        Args:
            membership: the configuration in force (``Raft.membership``).
            peers: the core's peers (``Raft.peers``), this node excluded.
        """
        joining = not membership.voters
        ids = (sorted({*self.configured, *self.announced}) if joining
               else sorted({*peers, self.node_id}))
        addresses: dict[str, str] = {}
        http: dict[str, str] = {}
        heard: list[str] = []
        keys: dict[str, bytes] | None = {} if self.folder_keys is not None else None
        for member_id in ids:
            ctx = self._context(membership, member_id)
            addr = (ctx.raft_addr if ctx is not None
                    else self.configured.get(member_id) or self.announced.get(member_id))
            if keys is not None and self.folder_keys is not None:
                key = (ctx.public_key.encode() if ctx is not None and ctx.public_key
                       else self.folder_keys.get(member_id))
                if key is not None:
                    keys[member_id] = key
            if addr is None:
                heard.append(member_id)
                if member_id not in self._warned:
                    self._warned.add(member_id)
                    log_event(logger, logging.INFO, "member_address_unknown",
                              member=member_id, hint="learned from its hello once it connects")
                continue
            addresses[member_id] = addr
            if ctx is not None:
                http[member_id] = ctx.http_addr
        if joining and keys is not None and self.folder_keys is not None:
            keys.update({m: k for m, k in self.folder_keys.items() if m not in keys})
        self._unaddressed = frozenset(heard)
        self._joining = joining
        return PeerTargets(addresses, keys, joining, http, tuple(heard))

    @staticmethod
    def _context(membership: Membership, member_id: str) -> MemberContext | None:
        return context_or_none(membership.context_of(member_id))
