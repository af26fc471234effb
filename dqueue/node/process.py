"""The Raft process: one thread, one ``zmq.Poller`` loop around the pure cores.

Each turn of the loop (docs/architecture.md, "The Ready loop"; docs/raft-process.md):

1. wait for a socket or the next timer, then drain every waiting IPC request and peer message
   (up to ``MAX_DRAIN``): all proposals that arrived while the previous Ready was being
   persisted go into the next append and the next transaction (group commit);
2. tick the core for the time that passed; expire deadlines; re-dispatch waiting requests;
3. for each Ready: persist (one synced LMDB transaction when it carries entries, a snapshot or
   a new term or vote; a commit index alone is not written), send, restore a snapshot, apply
   committed entries and answer the requests whose entry carries their request id, serve
   reads, ``advance`` (a leader applies and answers before it persists);
4. take a snapshot when enough was applied since the last one.

A leader sends its AppendEntries before its own fsync (Raft thesis section 10.2.1): the core
counts the leader's own entries toward commit only in ``advance``, after they are on disk, so
nothing is acknowledged before a majority stored it. Votes and every other message leave after
the fsync. The rule is ``dqueue.raft.ready_plan.plan_ready``, which the simulator drives too.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import signal
import time
from typing import Any

import zmq

from dqueue.config import NodeConfig
from dqueue.keys import load_peer_keys
from dqueue.logs import log_event
from dqueue.node.applier import apply_entries
from dqueue.node.codec import entry_is_applicable, persisted_state, stored_snapshot_of
from dqueue.node.gcpause import OldObjectFreezer
from dqueue.node.hello import Hellos
from dqueue.node.histogram import Histogram
from dqueue.node.ipc_server import CmdRequest, IpcServer, ReadRequest
from dqueue.node.leadership import Leadership
from dqueue.node.member_admin import MEMBER_OPS, MemberAdmin, transfer_target
from dqueue.node.member_marker import checked_marker
from dqueue.node.members import AppliedConfig, bootstrap_voters, open_transport
from dqueue.node.peer_frames import Refused, raft_message
from dqueue.node.proposals import ProposalBatcher
from dqueue.node.queries import NodeView
from dqueue.node.queue_events import (
    SnapshotCheck,
    log_queue_events,
    queue_event_metrics,
    restore_queue,
    snapshot_queue,
)
from dqueue.node.ready_writer import ReadyWriter
from dqueue.node.repair import open_store
from dqueue.node.requests import Stage, monotonic_ms
from dqueue.node.router import RequestRouter
from dqueue.node.router_links import RouterLinks
from dqueue.node.snapshotter import Snapshotter, TakenSnapshot
from dqueue.node.views import MemberAddresses, NodeFigures
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.kinds import PeerKind
from dqueue.queue import Command, QueueState
from dqueue.queue.commands import stamped
from dqueue.queue.config import settings_to_plain
from dqueue.queue.fields import LEASE_NONCE_BYTES
from dqueue.queue.log_commands import command_from_log
from dqueue.queue.sessions import ClientSession
from dqueue.raft import (
    Message,
    ProposalDropped,
    Raft,
    RaftConfig,
    Ready,
    Role,
    message_to_plain,
)

logger = logging.getLogger(__name__)

# At most this many inbound messages per loop turn, so that one turn (and the heartbeats it
# sends) is never delayed by a backlog: applying 256 commands takes tens of milliseconds,
# far below the election timeout, and 256 commands per fsync is already a large group commit.
MAX_DRAIN = 256
# An idle leader proposes a tick command this often when a lease or delay is due, so that
# expired leases and retention act without other traffic.
TICK_COMMAND_INTERVAL_MS = 1_000
# Log bytes (entry data) since the last snapshot that force a snapshot before snapshot_entries.
SNAPSHOT_LOG_BYTES = 256 << 20
# How long a stopping node waits for requests it already forwarded to drain.
STOP_DRAIN_MS = 1_000
# A loop turn this long is logged (it delays heartbeats: see docs/raft-process.md, Timers).
SLOW_TURN_MS = 200
# Proposals of this node not yet applied, at most; beyond it IPC requests wait in the socket.
MAX_PROPOSED_IN_FLIGHT = 1_024
PERSIST_MS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
GC_MS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class RaftProcess:
    """The Raft process of one node.

    Args:
        config: the node's configuration.
        context: the ZeroMQ context (a new one when omitted).

    Raises:
        CorruptRecord: the store holds a record that fails its checksum (and
            ``config.repair`` is off).
        RepairRefused: ``config.repair`` is on but the store cannot be repaired safely.
        ForgottenMember: an empty store under an id and key that were a member.
    """

    def __init__(self, config: NodeConfig, context: zmq.Context | None = None) -> None:
        self.config = config
        self.node_id = config.id
        self.context = context or zmq.Context()
        os.makedirs(config.data_dir, exist_ok=True)
        self.members: dict[str, str] = config.members()
        # Peer keys first: a bad key folder refuses to start before the store is touched.
        keys = (load_peer_keys(config.secure_dir, config.id, list(self.members))
                if config.secure_dir else None)
        self.store, loaded = open_store(config.data_dir, config.repair, len(self.members))
        # An empty store under an id and key that were a member has lost its promises.
        self.marker = checked_marker(config.secure_dir, config.id, loaded, self.store)
        # Nonzero after a repair, until the log is back up to it (repair.py).
        self._catch_up_stored = loaded.catch_up_index
        # The configuration comes from the store; --peers only bootstraps (members.py).
        member_ids = bootstrap_voters(self.store, loaded, self.members, bool(config.join))
        raft_config = RaftConfig(
            id=config.id, members=member_ids, election_ticks=config.election_ticks,
            heartbeat_ticks=config.heartbeat_ticks, max_inflight_msgs=config.max_inflight_msgs,
            max_append_bytes=config.max_append_bytes,
            snapshot_chunk_bytes=config.snapshot_chunk_bytes,
            max_snapshot_bytes=config.max_snapshot_bytes,
        )
        # A snapshot from a leader must restore into a scratch state before it is persisted.
        self.snapshot_check = SnapshotCheck(lambda: self.queue.config)
        # A forwarded entry is appended only if it would apply: a committed one that does
        # not stops every member (apply_failed.py).
        persisted = persisted_state(loaded)
        self.raft = Raft(raft_config, random.Random(os.urandom(16)), persisted,
                         self.snapshot_check, entry_is_applicable)
        # The settings in force come from the log (each new leader proposes its own ahead of
        # its term's commands, see _on_soft_state) or from the snapshot, so every member
        # applies each command under the same settings. The member's own only apply to what
        # precedes the first configure: no-ops, or a log written before settings were
        # replicated (when every member had to be configured alike).
        self.settings = config.queue
        self.queue = QueueState(self.settings)
        self.applied = 0
        self.applied_term = 0
        self.snapshot_index = 0
        # The configuration at the applied index (what the snapshots taken here record).
        self.applied_config = AppliedConfig.at_start(persisted, member_ids)
        if loaded.snapshot is not None:
            restore_queue(self.queue, loaded.snapshot.data)
            self.applied = self.snapshot_index = loaded.snapshot.index
            self.applied_term = loaded.snapshot.term
        self.log_bytes = sum(len(e.data) for e in loaded.entries)
        self.peer_sync = open_transport(self.context, config, self.members, keys)
        self.transport = self.peer_sync.transport
        self.ipc = IpcServer(self.context, config.ipc_endpoint())
        self.snapshotter = Snapshotter(config.data_dir)
        # The one source of the role and leader, for the loop and the router (leadership.py).
        self.leadership = Leadership(config.id, lambda: (
            self.raft.election_elapsed < self.raft.config.election_ticks))
        self.addresses = MemberAddresses(config.id, self.members, config.peers_http,
                                         config.http_addr)
        self._sync_peers()
        self.member_admin = MemberAdmin(self.raft, self.ipc, self.transport.send,
                                        self.addresses.of, keys is not None)
        self.stop_requested = False
        self.stopping_since_ms: float | None = None
        self.router = RequestRouter(RouterLinks(
            node_id=config.id, leadership=self.leadership, replier=self.ipc,
            send_peer=self.transport.send, propose=self.propose, read_index=self.raft.read_index,
            queue=self.queue, wall_ms=self.wall_ms,
            is_stopping=lambda: self.stopping_since_ms is not None, http_of=self.addresses.of,
            view=self.node_view, figures=self.figures, max_wait_ms=config.max_wait_ms))
        self.counters: dict[str, int] = {
            "ready_total": 0, "fsync_total": 0, "entries_persisted_total": 0,
            "entries_applied_total": 0, "proposals_total": 0, "snapshots_taken_total": 0,
            "snapshots_installed_total": 0, "leader_changes_total": 0, "raft_malformed_total": 0,
            "loop_turns_total": 0, "commands_applied_total": 0, "elections_started_total": 0,
            "snapshot_bytes": 0,
        }
        # Time of each synced Ready write, and entries per Ready (the group commit size).
        self.persist_ms = Histogram(PERSIST_MS_BUCKETS)
        self.batch_entries = Histogram(BATCH_BUCKETS)
        self.writer = ReadyWriter(self.store, loaded.hard_state, self.counters, self.persist_ms,
                                  self.batch_entries)
        self._last_wall_ms = 0
        self._last_proposal_ms = monotonic_ms()
        self.hellos = Hellos(config.http_addr, self.members.get(config.id, config.raft_addr))
        # The commands proposed during this loop turn, proposed together as one entry.
        self.commands_per_entry = Histogram(BATCH_BUCKETS)
        self.batcher = ProposalBatcher(config.max_append_bytes // 2, self.raft.propose,
                                       self.router.on_proposals_dropped,
                                       self.commands_per_entry.observe)
        # Full collections walk only what survived since the previous one (gcpause.py).
        self.gc_freezer = OldObjectFreezer()
        self.gc_ms = Histogram(GC_MS_BUCKETS)
        self.gc_ms.observe(self.gc_freezer.collect_and_freeze())
        log_event(logger, logging.INFO, "raft_process_started", members=list(member_ids),
                  applied=self.applied, log_entries=len(loaded.entries),
                  term=loaded.hard_state.term if loaded.hard_state else 0)

    # ----------------------------------------------------------------- the loop

    def run(self) -> int:
        """Run until stopped (SIGTERM/SIGINT, or ``request_stop``); return the exit status."""
        poller = zmq.Poller()
        poller.register(self.ipc.socket, zmq.POLLIN)
        poller.register(self.transport.router, zmq.POLLIN)
        control = self.transport.control_sockets
        for sock in control:
            poller.register(sock, zmq.POLLIN)
        tick_ms = self.config.tick_ms
        max_ticks = self.config.heartbeat_ticks + 1
        next_tick_ms = monotonic_ms() + tick_ms
        try:
            while True:
                now = monotonic_ms()
                wake_ms = min(next_tick_ms, self.router.next_deadline_ms() or next_tick_ms)
                timeout = 0 if self.raft.has_ready() else max(0, int(wake_ms - now) + 1)
                readable = dict(poller.poll(timeout))
                started = monotonic_ms()
                if any(sock in readable for sock in control):
                    self.transport.serve_control()
                self.counters["loop_turns_total"] += 1
                self._drain(self.ipc.socket in readable, self.transport.router in readable)
                now = monotonic_ms()
                drained = now
                if now >= next_tick_ms:
                    due = int((now - next_tick_ms) // tick_ms) + 1
                    # A turn is short (the poll wakes every tick), so this is normally 1. After
                    # a long turn (a big apply, a starved CPU, SIGSTOP) the time is counted as
                    # at most max_ticks: the messages that arrived meanwhile are still queued,
                    # and counting the whole stall would time out a leader that is alive.
                    for _ in range(min(due, max_ticks)):
                        self.raft.tick()
                    next_tick_ms = max(next_tick_ms + due * tick_ms, now + 1)
                    self._on_tick(now)
                self.router.expire(now)
                self.router.flush_reads()
                self._flush_proposals()
                self._handle_readies()
                handled = monotonic_ms()
                self._maybe_snapshot()
                ended = monotonic_ms()
                if ended - started >= SLOW_TURN_MS:
                    log_event(logger, logging.WARNING, "slow_turn", ms=round(ended - started),
                              drain_ms=round(drained - started),
                              ready_ms=round(handled - drained),
                              snapshot_ms=round(ended - handled))
                if self.stopping_since_ms is not None and self._stop_done(ended):
                    break
        finally:
            self.router.fail_all(ErrorCode.SHUTTING_DOWN, "the node is shutting down")
            self.member_admin.fail_all(ErrorCode.SHUTTING_DOWN, "the node is shutting down")
            self.close()
        log_event(logger, logging.INFO, "raft_process_stopped")
        return 0

    def request_stop(self) -> None:
        """Ask the loop to hand over leadership (if it leads) and exit; signal-safe."""
        self.stop_requested = True

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT request a clean stop with leadership transfer."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.request_stop())

    def close(self) -> None:
        """Close sockets and the store (with the newest commit index); stop a snapshot child."""
        self.snapshotter.close()
        self.ipc.close()
        self.transport.close()
        self.writer.flush()
        self.store.close()

    def _drain(self, ipc_open: bool = True, peer_open: bool = True) -> None:
        """Take every waiting IPC request and peer message, alternating, up to MAX_DRAIN.

        Only the sockets the poll found readable are asked (an empty receive raises zmq.Again,
        which costs more than the receive); what arrives meanwhile waits for the next turn.
        """
        ipc_recv, peer_recv = self.ipc.recv, self.transport.recv
        table = self.router.table
        for _ in range(MAX_DRAIN):
            # Backpressure: with this many proposals not yet applied, new requests wait in the
            # socket, so that no member is handed an unbounded batch to persist and apply.
            if ipc_open and table.count(Stage.PROPOSED) >= MAX_PROPOSED_IN_FLIGHT:
                ipc_open = False
            if ipc_open:
                try:
                    request = ipc_recv()
                except zmq.Again:
                    ipc_open = False
                else:
                    if request is not None:
                        self._on_ipc(request)
            if peer_open:
                try:
                    got = peer_recv()
                except zmq.Again:
                    peer_open = False
                else:
                    if got is not None:
                        self._on_peer(*got)
            if not (ipc_open or peer_open):
                return

    def _on_ipc(self, request: CmdRequest | ReadRequest) -> None:
        if not isinstance(request, CmdRequest):
            self.router.accept_read(request)
        elif request.cmd.get("op") in MEMBER_OPS:
            self.member_admin.accept(request)
        else:
            self.router.accept_command(request)

    def _on_peer(self, sender: str, kind: bytes, body: Any) -> None:
        if kind == PeerKind.RAFT:
            msg = raft_message(body, sender, self.node_id)
            if isinstance(msg, Message):
                self.raft.step(msg)
            elif msg is Refused.FORGED:
                self.transport.counters.reject(msg.value)
            else:
                self.counters["raft_malformed_total"] += 1
        elif kind == PeerKind.HELLO:
            if self.peer_sync.learn_hello(sender, body):
                self._sync_peers(force=True)  # a member we could hear but not answer
            if not self.addresses.learn(sender, body):
                self.transport.counters.malformed += 1
        elif (not self.member_admin.on_peer(sender, kind, body)
              and not self.router.on_peer(sender, kind, body)):
            self.transport.counters.malformed += 1

    def _on_tick(self, now: float) -> None:
        self.hellos.on_tick(now, self.transport)
        for peer in self.transport.lost_peers():
            self.raft.peer_lost(peer)  # its connection closed: do not wait out its silence
        if self.stop_requested and self.stopping_since_ms is None:
            self._begin_stop(now)
        self.router.on_tick(now)
        self.member_admin.expire(now)
        gc_ms = self.gc_freezer.maybe_collect()
        if gc_ms is not None:
            self.gc_ms.observe(gc_ms)
        if self.leadership.is_leader and self.stopping_since_ms is None:
            self._maybe_propose_tick(now)

    # ----------------------------------------------------------------- Ready

    def _handle_readies(self) -> None:
        while self.raft.has_ready():
            self._handle_ready(self.raft.ready())
        self._sync_peers()

    def _sync_peers(self, force: bool = False) -> None:
        """Connect to and admit exactly the members of the configuration in force and, until
        the change applies here, of the one before it (members.py); ``force`` after a hello
        gave a member an address."""
        targets = self.peer_sync.refresh(self.raft.membership, self.applied_config.membership,
                                         force)
        if targets is not None:
            self.members = targets.addresses
            self.addresses.set_members(targets.addresses, targets.http)

    def _handle_ready(self, rd: Ready) -> None:
        self.counters["ready_total"] += 1
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state.role, rd.soft_state.leader_id)
        # What may happen before the write is decided by the one rule the simulator drives too
        # (dqueue/raft/ready_plan.py; docs/raft-process.md, "Answers before the next fsync").
        plan = self.writer.plan(rd, self.leadership.role)
        for msg in plan.early:
            self._send_raft(msg)
        if plan.apply_first:
            self._apply(rd)
        # A commit index alone is not written (volatile state, Raft figure 2): it goes with the
        # next needed write and at a clean stop (docs/raft-process.md, "Storage").
        self.writer.write(rd, plan)
        if rd.hard_state is not None:  # before any promise of this Ready leaves
            self.marker.note_term(rd.hard_state.term)
        if rd.entries:
            self.log_bytes += sum(len(e.data) for e in rd.entries)
        for msg in plan.late:
            self._send_raft(msg)
        if rd.snapshot is not None:
            self._install_snapshot(rd)
        if rd.committed_entries and not plan.apply_first:
            self._apply(rd)
        if rd.read_states:
            self.router.on_read_states(rd.read_states, self.applied)
        self.raft.advance(rd)
        if self._catch_up_stored and not self.raft.catch_up_index:
            self.store.clear_catch_up()
            log_event(logger, logging.INFO, "repair_caught_up", index=self._catch_up_stored)
            self._catch_up_stored = 0

    def _send_raft(self, msg: Message) -> None:
        self.transport.send(msg.to, PeerKind.RAFT, message_to_plain(msg))

    def _on_soft_state(self, role: Role, leader_id: str | None) -> None:
        was_leader = self.leadership.is_leader
        new_leader, campaign = self.leadership.observe(role, leader_id)
        self.counters["leader_changes_total"] += new_leader
        self.counters["elections_started_total"] += campaign
        log_event(logger, logging.INFO, "role_changed", role=role.value, leader_id=leader_id,
                  term=self.raft.current_term)
        if was_leader and role is not Role.LEADER:
            self.batcher.forget_parsed()
            self.router.on_lost_leadership()
        if role is Role.LEADER and not was_leader:
            # First command of the term, before any client's: this leader's queue settings.
            # Unstamped (now_ms 0): it never moves the cluster clock, so a cluster restarted
            # without traffic keeps exactly the state it had.
            configure = {"op": "configure", "settings": settings_to_plain(self.settings),
                         "now_ms": 0}
            self.batcher.add("", configure, command_from_log(configure))
        if leader_id is not None:
            self.router.on_leader_known()
            self.member_admin.on_leader_known(leader_id)

    def _install_snapshot(self, rd: Ready) -> None:
        assert rd.snapshot is not None
        meta = rd.snapshot.meta
        self.snapshot_check.install(self.queue, rd.snapshot.data)
        self.applied = self.snapshot_index = meta.index
        self.applied_term = meta.term
        self.log_bytes = 0
        self.counters["snapshots_installed_total"] += 1
        self.counters["snapshot_bytes"] = len(rd.snapshot.data)
        self.applied_config.on_snapshot(meta.membership)
        log_event(logger, logging.INFO, "snapshot_installed", index=meta.index, term=meta.term)
        self.router.on_applied_to(self.applied)

    def _apply(self, rd: Ready) -> None:
        applied_commands = apply_entries(rd.committed_entries, self.queue,
                                         self.batcher.take_parsed, self.router.table.pending,
                                         self.router.on_applied)
        if rd.committed_entries:
            self.applied_config.on_applied(rd.committed_entries)
            self.member_admin.on_applied(rd.committed_entries)
            last = rd.committed_entries[-1]
            self.applied, self.applied_term = last.index, last.term
        self.counters["entries_applied_total"] += len(rd.committed_entries)
        self.counters["commands_applied_total"] += applied_commands
        log_queue_events(self.queue, logger)
        self.router.on_applied_to(self.applied)

    # ----------------------------------------------------------------- figures

    def node_view(self) -> NodeView:
        """What the local health, cluster and stats reads show of this node now."""
        status = self.raft.status()
        return NodeView(node_id=self.node_id, status=status,
                        leader_http=self.addresses.of(status.leader_id), members=self.members,
                        http_addrs=self.addresses.known(),
                        stopping=self.stopping_since_ms is not None)

    def figures(self) -> NodeFigures:
        """Every figure of this process now, for the ``metrics`` read (views.py)."""
        tc, ic, sessions = self.transport.counters, self.ipc.counters, self.queue.sessions
        return NodeFigures(self.node_view(), {
            **self.counters, **self.router.figures(), **queue_event_metrics(self.queue),
            "store_syncs_total": self.store.syncs, "peer_sent_total": tc.sent,
            "peer_received_total": tc.received, "peer_send_dropped_total": tc.send_dropped,
            "peer_malformed_total": tc.malformed, "peer_unknown_total": tc.unknown_peer,
            # Refused handshakes and forged messages (docs/security.md), every reason listed.
            "peer_rejected_total": {"by": "reason", "values": self.transport.rejected_by_reason()},
            "ipc_received_total": ic.received, "ipc_malformed_total": ic.malformed,
            "ipc_bad_request_total": ic.bad_request + self.router.bad_requests,
            # Client sessions (docs/raft-process.md): the table's size.
            "session_clients": len(sessions), "session_outcomes": sessions.outcomes_kept(),
            "persist_ms": self.persist_ms.to_plain(),
            "entries_per_ready": self.batch_entries.to_plain(),
            "commands_per_entry": self.commands_per_entry.to_plain(),
            "gc_ms": self.gc_ms.to_plain(), "gc_frozen_objects": self.gc_freezer.frozen_objects(),
            "snapshots_rejected_total": self.raft.snapshots_rejected,
            "snapshots_rejected_by_reason_total": {
                "by": "reason", "values": dict(self.raft.snapshots_rejected_by_reason)},
            "proposals_rejected_total": self.raft.proposals_rejected,
        })

    # ----------------------------------------------------------------- time and snapshots

    def wall_ms(self) -> int:
        """The leader's clock for stamping commands; never runs backwards in this process."""
        now = int(time.time() * 1000)
        self._last_wall_ms = max(self._last_wall_ms, now)
        return self._last_wall_ms

    def propose(self, rid: str, cmd: dict[str, Any], command: Command | None = None,
                session: ClientSession | None = None) -> None:
        """Stamp ``cmd`` with the leader's time (a lease also with a fresh random nonce, from
        which its tokens derive: docs/security.md, "Lease fencing") and add it to this turn's
        batch entry.

        The batch is proposed at the end of the drain phase of the loop turn (or sooner when
        it is full); if the core drops it, the router is told the request ids
        (``RequestRouter.on_proposals_dropped``).

        Args:
            rid: the request id the item carries ("" for the node's own commands).
            cmd: the plain command, validated, without ``now_ms``.
            command: the same command already parsed, if the caller has it: kept until the
                entry with these exact bytes applies, so the leader does not parse it twice.
            session: the client session the item carries (None for the node's own commands).
        """
        now_ms = self.wall_ms()
        plain = dict(cmd)
        plain["now_ms"] = now_ms
        nonce = None
        if plain.get("op") == "lease":
            # Drawn here, on the leader, for every proposal (a client's nonce is replaced): the
            # entry carries it, so every member applies the same tokens.
            nonce = plain["nonce"] = secrets.token_hex(LEASE_NONCE_BYTES)
        if command is None:
            command = command_from_log(plain)  # the node's own commands (tick)
        elif nonce is not None or command.now_ms != now_ms:
            # Equal to command_from_plain(plain): the stamp is the only difference.
            command = stamped(command, now_ms, nonce)
        self.batcher.add(rid, plain, command, session)
        self.counters["proposals_total"] += 1
        self._last_proposal_ms = monotonic_ms()

    def _flush_proposals(self) -> None:
        """Propose this turn's commands as one entry (entry-level group commit)."""
        if len(self.batcher):
            self.batcher.flush()

    def _maybe_propose_tick(self, now: float) -> None:
        if now - self._last_proposal_ms < TICK_COMMAND_INTERVAL_MS:
            return
        due = self.queue.next_deadline_ms()
        idle_for_retention = now - self._last_proposal_ms >= 60 * TICK_COMMAND_INTERVAL_MS
        if (due is not None and due <= self.wall_ms()) or idle_for_retention:
            try:
                self.propose("", {"op": "tick"})
            except ProposalDropped:  # during a leadership transfer: try again later
                self._last_proposal_ms = now

    def _maybe_snapshot(self) -> None:
        """Store a finished snapshot; start one when enough was applied since the last."""
        taken = self.snapshotter.poll()
        if taken is not None:
            self._store_snapshot(taken)
        if self.snapshotter.busy:
            return
        since = self.applied - self.snapshot_index
        if since <= 0:
            return
        if since < self.config.snapshot_entries and self.log_bytes < SNAPSHOT_LOG_BYTES:
            return
        self.log_bytes = 0
        self.applied_config.snapshot_started()
        self.snapshotter.start(self.applied, self.applied_term,
                               lambda: snapshot_queue(self.queue))

    def _store_snapshot(self, taken: TakenSnapshot) -> None:
        if taken.index <= self.snapshot_index:
            return  # a newer snapshot was installed from the leader meanwhile
        # The configuration in force at the snapshot's index, not --peers (members.py).
        self.store.save_snapshot(stored_snapshot_of(taken.index, taken.term,
                                                    self.applied_config.at_snapshot, taken.data))
        self.raft.compact(taken.index, taken.data)
        self.snapshot_index = taken.index
        self.counters["snapshots_taken_total"] += 1
        self.counters["snapshot_bytes"] = len(taken.data)
        self.counters["fsync_total"] += 1
        log_event(logger, logging.INFO, "snapshot_taken", index=taken.index,
                  bytes=len(taken.data), ms=round(taken.ms, 1))

    # ----------------------------------------------------------------- stopping

    def _begin_stop(self, now: float) -> None:
        self.stopping_since_ms = now
        target = transfer_target(self.raft.status())
        if target is not None:
            log_event(logger, logging.INFO, "leadership_transfer", target=target)
            self.raft.transfer_leadership(target)

    def _stop_done(self, now: float) -> bool:
        assert self.stopping_since_ms is not None
        elapsed = now - self.stopping_since_ms
        election_ms = 2 * self.config.election_ticks * self.config.tick_ms
        if (self.leadership.is_leader and len(self.raft.membership.voters) > 1
                and elapsed < election_ms):
            return False  # the transfer is still under way
        return self.router.count_in_flight() == 0 or elapsed >= election_ms + STOP_DRAIN_MS
