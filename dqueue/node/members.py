"""The node's side of the cluster configuration: which one a restarted member starts from,
which one its snapshots record, and keeping the transport in step with the one in force.

- Start: the bootstrap voters are the ones the store recorded when the member first started
  (``--peers``, or none for a member started with ``--join``); the core then takes the
  configuration of the stored snapshot and of the conf entries of the stored log
  (``dqueue.raft.reconfig.initial_history``). ``--peers`` given later only says where the
  bootstrap members listen.
- Snapshots: a snapshot taken at applied index ``i`` must record the configuration in force at
  ``i``, so this module follows the applied CONF_CHANGE entries (``AppliedConfig``), the same
  entries the core decodes (``dqueue.raft.membership.decode_conf_entry``).
- Transport: after each Ready the node compares the configuration in force and the applied
  one with the last it acted on, and tells the transport whom to connect to and admit
  (``peer_book.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import zmq

from dqueue.config import NodeConfig
from dqueue.keys import PeerKeys, load_member_keys
from dqueue.logs import log_event
from dqueue.node.hello import hello_raft_addr
from dqueue.node.peer_book import PeerBook, PeerTargets
from dqueue.node.store import LoadedState, Store
from dqueue.node.transport import PeerTransport
from dqueue.raft import Entry, EntryType, Membership, PersistedState
from dqueue.raft.membership import decode_conf_entry

logger = logging.getLogger(__name__)


def bootstrap_voters(store: Store, loaded: LoadedState, configured: Iterable[str],
                     joining: bool) -> tuple[str, ...]:
    """The bootstrap voters of this member: the stored ones, else (first start) the
    configured ones, or none when it joins; recorded in the store on first start.

    A configuration differing from the stored one is logged and ignored: the configuration
    changes only through the log (``dqueue-cli cluster``), never through ``--peers``.
    """
    configured_ids = () if joining else tuple(sorted(configured))
    if loaded.members is None:
        store.save(members=configured_ids)
        return configured_ids
    stored = tuple(loaded.members)
    if stored != configured_ids and not joining:
        log_event(logger, logging.INFO, "members_from_store", stored=list(stored),
                  configured=list(configured_ids))
    return stored


class AppliedConfig:
    """The configuration in force at the applied index (what a snapshot taken there records).

    Args:
        base: the stored snapshot's configuration, or the bootstrap voters without one.
    """

    def __init__(self, base: Membership) -> None:
        self.membership = base
        self.at_snapshot = base  # the configuration of the snapshot being taken

    @classmethod
    def at_start(cls, persisted: PersistedState | None,
                 bootstrap: tuple[str, ...]) -> AppliedConfig:
        """A restarted member has applied its stored snapshot (a new one: nothing)."""
        if persisted is not None and persisted.snapshot is not None:
            return cls(persisted.snapshot.meta.membership)
        return cls(Membership(voters=bootstrap))

    def snapshot_started(self) -> None:
        """A snapshot of the state as applied now is being taken: it records this one."""
        self.at_snapshot = self.membership

    def on_applied(self, entries: Iterable[Entry]) -> None:
        """Committed entries were applied: take the configuration of each conf entry.

        The entry is in the log already, checked by the core on the way in; a failure to
        decode is a corrupted store and is raised (members would otherwise diverge).
        """
        for entry in entries:
            if entry.type is EntryType.CONF_CHANGE:
                self.membership = decode_conf_entry(entry.data)[1]

    def on_snapshot(self, membership: Membership) -> None:
        """A snapshot from the leader replaced the state: its configuration is applied."""
        self.membership = membership


class TransportSync:
    """Keeps the transport's peers and admitted keys those of the configuration in force.

    Args:
        book: the addresses and keys of the members.
        transport: the peer transport.
    """

    def __init__(self, book: PeerBook, transport: PeerTransport) -> None:
        self.book = book
        self.transport = transport
        self._seen: tuple[Membership, Membership] | None = None

    def learn_hello(self, sender: str, body: Any) -> bool:
        """A member's hello: True when the raft address it announces gives that member an
        address it lacked, so the targets must be refreshed (``refresh(force=True)``)."""
        raft_addr = hello_raft_addr(body)
        return raft_addr is not None and self.book.learn(sender, raft_addr)

    def refresh(self, membership: Membership, applied: Membership,
                force: bool = False) -> PeerTargets | None:
        """Act on the configuration in force (``Raft.membership``) and the one at the applied
        index when either changed: the new targets, or None when nothing changed.

        The peers are the members of both: a member that a pending change removes still gets
        the entry that removes it (thesis 4.1), and is dropped, its key refused, once that
        entry is applied here. (The core's own ``Raft.peers`` is refreshed on commit only on
        a leader, so a follower would keep admitting a removed member.)
        """
        seen = (membership, applied)
        if seen == self._seen and not force:
            return None
        self._seen = seen
        node_id = self.book.node_id
        peers = tuple(m for m in dict.fromkeys(membership.members() + applied.members())
                      if m != node_id)
        targets = self.book.targets(membership, peers)
        self.transport.set_peers(targets.addresses, targets.keys, targets.hear_any_member,
                                 targets.heard)
        log_event(logger, logging.INFO, "peers_changed", voters=list(membership.voters),
                  learners=list(membership.learners), peers=sorted(targets.addresses))
        return targets


def open_transport(context: zmq.Context, config: NodeConfig, members: dict[str, str],
                   keys: PeerKeys | None) -> TransportSync:
    """The peer transport of a node (bound, connected to the configured ``members``) and what
    keeps it in step with the configuration.

    Raises:
        zmq.ZMQError: the raft address cannot be bound.
        PeerKeyError: a key of the key folder is malformed.
    """
    if keys is None:
        # Without keys any process that reaches the peer port can pose as a member.
        log_event(logger, logging.WARNING, "peer_transport_insecure",
                  admitted="any address" if config.insecure else "loopback only",
                  hint="create keys with `dqueue-cli keys init`, pass --secure-dir")
    transport = PeerTransport(context, config.id, config.raft_addr, members, keys,
                              any_address=config.insecure)
    folder = load_member_keys(config.secure_dir) if keys is not None else None
    return TransportSync(PeerBook(config.id, members, folder), transport)
