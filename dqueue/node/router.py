"""Where each client request goes, and how it is answered.

A command accepted over IPC is proposed when this node leads, forwarded to the leader node over
the peer transport when another node leads (so the leader stamps the time), or kept until a
leader is known. It is answered when an applied entry carries its request id: on the leader
that proposed it, and on the node that forwarded it (the leader answers that node with
``fwd_res``; the forwarding node may also see the entry apply first; the first answer wins).
Reads wait for a ReadIndex round (batched: one round per loop turn for every new read) and for
the state machine to reach the read index, unless they ask for a stale read.

Every command carries a client session (Raft dissertation section 6.3, ``dqueue/queue/
sessions.py``): this process's client id and the command's serial number when it came over
IPC, the forwarding node's when it came from a peer. The state machine applies a session's
command once and answers its repeats with the first outcome, so a command whose leader changed
or was lost is simply sent again: a forwarded one to the new leader as soon as one is known, a
proposed one (this node stopped leading) to the next leader. The leader answers a repeat it
already applied from the session table, without proposing it again.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any

import msgpack

from dqueue.logs import log_event
from dqueue.node import queries, views
from dqueue.node.histogram import Histogram
from dqueue.node.ipc_server import CmdRequest, ReadRequest
from dqueue.node.requests import Pending, ReplyTo, RequestTable, Stage, monotonic_ms
from dqueue.node.router_links import RouterLinks
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.kinds import PeerKind
from dqueue.queue import InvalidCommand, command_from_plain
from dqueue.queue.sessions import STALE, ClientSession, is_session
from dqueue.raft import ReadState

logger = logging.getLogger(__name__)

# A ReadIndex round not answered within this long is asked again (the message may be lost).
READ_RETRY_MS = 500
_EMPTY_LEASE_OUTCOME = {"ok": True, "value": {"tasks": []}}
# Bounds of what a peer's fwd or fwd_res may carry (larger values are refused, not clamped).
MAX_RID_CHARS = 1_024
MAX_CODE_CHARS = 64
MAX_FORWARD_MS = 1 << 53
COMMAND_MS_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50, 100, 250, 1000, 5000)


class RequestRouter:
    """Request handling of one Raft process.

    Args:
        links: the few parts of the node it uses (router_links.py).
    """

    def __init__(self, links: RouterLinks) -> None:
        self.links = links
        self.leadership = links.leadership
        # One client id per process incarnation: a restarted process never reuses serial
        # numbers that the state machine may still remember (dissertation 6.3).
        self.table = RequestTable(f"{links.node_id[:64]}.{os.urandom(8).hex()}")
        self._new_reads: list[str] = []
        self._read_batches: dict[bytes, tuple[float, list[str]]] = {}
        self._read_seq = itertools.count(1)
        self._have_parked_check = False
        # Commands sent again to a new leader; repeats a leader answered from the session table.
        self.counters = {"requests_resent_total": 0, "session_repeats_answered_total": 0}
        # Requests refused as malformed here (the IPC server counts those it refuses itself).
        self.bad_requests = 0
        # Intake to outcome of each command this node answered (not long polls): commit latency
        # as the node sees it, without the client's own scheduling.
        self.command_ms = Histogram(COMMAND_MS_BUCKETS)

    def figures(self) -> dict[str, Any]:
        """The router's figures for the metrics map, named as exported."""
        return {"requests_pending": len(self.table.pending),
                "requests_parked": self.table.count(Stage.PARKED), **self.counters,
                "command_ms": self.command_ms.to_plain()}

    # ----------------------------------------------------------------- intake

    def accept_command(self, req: CmdRequest) -> None:
        """A command from a local API thread."""
        self._accept_command(req.rid, req.cmd, req.timeout_ms, req.wait_ms,
                             ReplyTo(identity=req.identity))

    def _accept_command(self, rid: str, cmd: dict[str, Any], timeout_ms: int, wait_ms: int,
                        reply_to: ReplyTo, session: ClientSession | None = None) -> None:
        links = self.links
        if links.is_stopping():
            self._send_err(reply_to, rid, ErrorCode.SHUTTING_DOWN, "the node is shutting down")
            return
        try:
            # On the leader, parse the command as it will be proposed (stamped), so that
            # propose need not copy it with a new time when both fall in the same millisecond.
            command = command_from_plain(
                {**cmd, "now_ms": links.wall_ms()} if self.leadership.is_leader else cmd)
        except InvalidCommand as exc:
            self._send_err(reply_to, rid, ErrorCode.BAD_REQUEST, f"{exc.field}: {exc.message}")
            return
        if rid in self.table.pending:
            return  # the same request delivered twice (a forward retried): one answer
        now = monotonic_ms()
        wait_ms = min(wait_ms, links.max_wait_ms) if cmd.get("op") == "lease" else 0
        if reply_to.peer is None:
            session = self.table.new_session()  # a command of this client (IPC)
        request = Pending(rid=rid, reply_to=reply_to, is_read=False, body=cmd,
                          deadline_ms=now + timeout_ms + wait_ms, wait_until_ms=now + wait_ms,
                          command=command, accepted_ms=now, session=session)
        self.table.add(request)
        self._dispatch(request)

    def accept_read(self, req: ReadRequest) -> None:
        """A read query from a local API thread."""
        reply_to = ReplyTo(identity=req.identity)
        try:
            op = queries.check_query(req.query)
        except queries.BadQuery as exc:
            self._send_err(reply_to, req.rid, ErrorCode.BAD_REQUEST, str(exc))
            return
        if op in queries.LOCAL_OPS:
            self._send_value(reply_to, req.rid, self._local_value(op))
            return
        if req.stale:
            self._serve_read_now(reply_to, req.rid, req.query)
            return
        if self.links.is_stopping():
            self._send_err(reply_to, req.rid, ErrorCode.SHUTTING_DOWN, "the node is shutting down")
            return
        now = monotonic_ms()
        request = Pending(rid=req.rid, reply_to=reply_to, is_read=True, body=req.query,
                          deadline_ms=now + req.timeout_ms, stage=Stage.READ_INDEX,
                          wait_until_ms=now + min(queries.wait_ms_of(req.query),
                                                  self.links.max_wait_ms))
        if self.table.add(request):
            self._new_reads.append(req.rid)

    def on_peer(self, sender: str, kind: bytes, body: Any) -> bool:
        """A forwarding message from a peer; False when it is not one (the caller counts it).

        Any value at all is accepted without raising. What is kept or passed on (the command
        proposed, an outcome or error relayed to the local API) has the shape its next reader
        expects and can be encoded again (``_is_packable``), so a peer's message can never
        make this process fail later, when it proposes or answers.
        """
        if (type(body) is not dict or not _is_rid(body.get("rid"))
                or kind not in (PeerKind.FWD, PeerKind.FWD_RES) or not _is_packable(body)):
            return False
        rid = body["rid"]
        if kind == PeerKind.FWD:
            cmd, timeout_ms, wait_ms = body.get("cmd"), body.get("timeout_ms"), body.get("wait_ms")
            if not (isinstance(cmd, dict) and _is_count(timeout_ms) and _is_count(wait_ms)):
                return False
            session = body.get("session")
            if session is not None and not is_session(session):
                return False
            if not self.leadership.is_leader:
                self.links.send_peer(sender, PeerKind.FWD_RES, {
                    "rid": rid, "code": ErrorCode.NOT_LEADER, "message": "not the leader",
                    "leader_id": self.leadership.leader_id})
                return True
            self._accept_command(rid, cmd, timeout_ms, wait_ms, ReplyTo(peer=sender),
                                 None if session is None else ClientSession(*session))
            return True
        if kind == PeerKind.FWD_RES:
            request = self.table.pending.get(rid)
            if request is None or request.stage is not Stage.FORWARDED:
                return True  # answered already (by a local apply) or given up
            if "outcome" in body:
                if not _is_outcome(body["outcome"]):
                    return False
                # Any leader's outcome is the command's (a session applies it once).
                self.table.pop(rid)
                self._observe_command_ms(request, monotonic_ms())
                self._send_outcome(request, body["outcome"])
            elif sender != request.forwarded_to:
                return True  # an earlier leader's refusal: the command was sent again since
            elif body.get("code") == ErrorCode.NOT_LEADER:
                self.table.move(request, Stage.WAIT_LEADER)
                self._dispatch_waiting()
            else:
                code, message = body.get("code") or ErrorCode.TIMEOUT, body.get("message") or ""
                if not (_is_code(code) and type(message) is str):
                    return False
                self.table.pop(rid)
                self._send_err(request.reply_to, rid, code, message)
            return True
        return False

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self, request: Pending) -> None:
        links, leader_id = self.links, self.leadership.leader_id
        if request.session is None and not request.is_read:
            # Sent as this client's new command: a parked lease proposed again (its empty
            # lease applied under the old number), or a forward from a node that sent none.
            request.session = self.table.new_session()
        if request.is_read:
            self.table.move(request, Stage.READ_INDEX)
            self._new_reads.append(request.rid)
        elif self.leadership.is_leader:
            session = self.table.session_of(request)
            if session is not None and self._answer_repeat(request, session):
                return
            if self._park_unproposed(request):
                return
            # Added to this turn's batch entry; a batch the core drops comes back through
            # on_proposals_dropped.
            links.propose(request.rid, request.body, request.command, session)
            self.table.move(request, Stage.PROPOSED)
        elif leader_id is not None and leader_id != links.node_id:
            now = monotonic_ms()
            body = {"rid": request.rid, "cmd": request.body,
                    "timeout_ms": max(0, int(request.deadline_ms - now)),
                    "wait_ms": max(0, int(request.wait_until_ms - now))}
            session = self.table.session_of(request)
            if session is not None:
                body["session"] = list(session)
            if links.send_peer(leader_id, PeerKind.FWD, body):
                request.forwarded_to = leader_id
                self.table.move(request, Stage.FORWARDED)
            else:
                self.table.move(request, Stage.WAIT_LEADER)
        else:
            self.table.move(request, Stage.WAIT_LEADER)

    def _park_unproposed(self, request: Pending) -> bool:
        """On the leader: a lease that would lease nothing gets no log entry (it would only
        find the queue empty). A long poll is parked, and proposed once a task is visible
        (``_check_parked``), like one that applied empty; a lease without a wait is answered
        empty at once. Idle workers then cause no commands at all: 16 gateway sockets of
        parked leases once proposed about 1,000 empty leases a second. (An empty answer from a
        leader deposed meanwhile loses nothing: any lease may come back empty.)"""
        body = request.body
        if body.get("op") != "lease":
            return False
        if self.links.queue.has_visible(body.get("types"), self.links.wall_ms(),
                                        body.get("queues")):
            return False
        if request.wait_until_ms <= monotonic_ms():
            self.table.pop(request.rid)
            self._send_outcome(request, _EMPTY_LEASE_OUTCOME)
            return True
        request.last_outcome = _EMPTY_LEASE_OUTCOME
        self.table.release_session(request)  # a new serial number when it is proposed
        self.table.move(request, Stage.PARKED)
        return True

    def _answer_repeat(self, request: Pending, session: ClientSession) -> bool:
        """On the leader: answer a command its session shows applied already (a forward sent
        again after a leader change) from the session table; False when it is new."""
        prior = self.links.queue.sessions.lookup(session.client_id, session.seq)
        if prior is None:
            return False
        self.counters["session_repeats_answered_total"] += 1
        if prior is STALE:
            self.table.pop(request.rid)
            self._send_err(request.reply_to, request.rid, ErrorCode.DUPLICATE_REQUEST,
                           "below its client's first unanswered request: applied or given up "
                           "earlier, not applied now")
            return True
        # As if its entry applied now: answered, or parked when it is an empty long poll.
        self.table.move(request, Stage.PROPOSED)
        self.on_applied(request.rid, prior)
        return True

    def _dispatch_waiting(self) -> None:
        if self.leadership.leader_id is None:
            return
        for request in self.table.in_stage(Stage.WAIT_LEADER):
            self._dispatch(request)

    def on_leader_known(self) -> None:
        """A leader was elected or learned: send it what waited, and send again what was
        forwarded to another leader (its session makes a repeat harmless: the new leader
        answers it from the session table or applies it once)."""
        leader_id = self.leadership.leader_id
        for request in self.table.in_stage(Stage.FORWARDED):
            if request.forwarded_to != leader_id:
                request.may_be_in_log = True  # the old leader may have proposed it
                self.table.move(request, Stage.WAIT_LEADER)
                self.counters["requests_resent_total"] += 1
        self._dispatch_waiting()

    def on_proposals_dropped(self, rids: list[str]) -> None:
        """The core refused a batch entry (no leader, or a transfer under way): its commands
        wait for a leader again (no entry carries them, so none can be answered)."""
        for rid in rids:
            request = self.table.pending.get(rid)
            if request is not None and request.stage is Stage.PROPOSED:
                self.table.move(request, Stage.WAIT_LEADER)

    def on_lost_leadership(self) -> None:
        """This node stopped leading: parked leases and this client's proposed commands go to
        the new leader.

        A proposed entry may still commit under the next leader (then its local apply answers
        it, whichever stage it is in), or be lost: so this client's commands are sent to the
        next leader with their sessions, which apply each at most once. Commands proposed for
        another node stay here: that node sends them again itself.
        """
        for request in self.table.in_stage(Stage.PROPOSED):
            if request.reply_to.peer is None:
                request.may_be_in_log = True
                self.table.move(request, Stage.WAIT_LEADER)
                self.counters["requests_resent_total"] += 1
        for request in self.table.in_stage(Stage.PARKED):
            if request.reply_to.peer is not None:
                self.table.pop(request.rid)
                self.links.send_peer(request.reply_to.peer, PeerKind.FWD_RES, {
                    "rid": request.rid, "code": ErrorCode.NOT_LEADER, "message": "leadership lost",
                    "leader_id": self.leadership.leader_id})
            else:
                self.table.move(request, Stage.WAIT_LEADER)

    def on_tick(self, now: float) -> None:
        """Once per tick: retry what waits for a leader, re-ask stale ReadIndex rounds,
        and give parked leases a chance when time made tasks visible."""
        self._dispatch_waiting()
        for ctx, (asked_ms, rids) in list(self._read_batches.items()):
            if now - asked_ms >= READ_RETRY_MS:
                del self._read_batches[ctx]
                self._new_reads.extend(rids)
        self._have_parked_check = True
        self._check_parked()

    def expire(self, now: float) -> None:
        """Answer every request whose deadline passed."""
        for request in self.table.expired(now):
            if request.stage is Stage.PARKED:
                self._send_outcome(request, request.last_outcome or _EMPTY_LEASE_OUTCOME)
                continue
            if request.stage is Stage.WAITING_READ:  # the wait is over: the task as it is
                self._serve_read_now(request.reply_to, request.rid, request.body)
                continue
            leader_id = self.leadership.leader_id
            if (leader_id is None and request.stage in (Stage.WAIT_LEADER, Stage.READ_INDEX)
                    and not request.may_be_in_log):
                self._send_err(request.reply_to, request.rid, ErrorCode.NO_LEADER,
                               "no leader was elected within the request's deadline")
            else:
                self._send_err(request.reply_to, request.rid, ErrorCode.TIMEOUT,
                               f"not completed within the deadline ({request.stage.value})")

    def next_deadline_ms(self) -> float | None:
        """The earliest request deadline (the loop wakes up for it)."""
        return self.table.next_deadline_ms()

    def count_in_flight(self) -> int:
        """Requests this node still has to answer."""
        return len(self.table.pending)

    def fail_all(self, code: str, message: str) -> None:
        """Answer every pending request with an error (at exit)."""
        for rid in list(self.table.pending):
            request = self.table.pop(rid)
            if request is not None:
                self._send_err(request.reply_to, rid, code, message)

    # ----------------------------------------------------------------- apply

    def on_applied(self, rid: str, outcome: dict[str, Any]) -> None:
        """The entry carrying request id ``rid`` was applied with ``outcome``.

        A command waiting for a leader is answered too: its entry committed after all (its
        session applied it once, so this is its one outcome).
        """
        request = self.table.pending.get(rid)
        if request is None or request.is_read:
            return
        now = monotonic_ms()
        waiting = request.wait_until_ms > now and _is_empty_lease(outcome)
        # An empty long poll's session command is applied: it releases its serial number (it
        # must not hold first_unanswered down while it waits), and takes a new one if it is
        # proposed or sent again (a new lease, not a repeat of the empty one).
        if request.stage is Stage.PROPOSED and waiting and self.leadership.is_leader:
            request.last_outcome = outcome
            self.table.release_session(request)
            self.table.move(request, Stage.PARKED)
            return
        if request.stage in (Stage.FORWARDED, Stage.WAIT_LEADER) and waiting:
            self.table.release_session(request)
            return  # the leader parks it and answers with fwd_res
        if request.stage not in (Stage.PROPOSED, Stage.FORWARDED, Stage.WAIT_LEADER):
            return  # a read, or a parked lease (answered when it is proposed again)
        self.table.pop(rid)
        self._observe_command_ms(request, now)
        self._send_outcome(request, outcome)

    def _observe_command_ms(self, request: Pending, now: float) -> None:
        """Count the time a command took from intake to its outcome (long polls excluded:
        they wait on purpose)."""
        if request.wait_until_ms <= request.accepted_ms:
            self.command_ms.observe(now - request.accepted_ms)

    def on_applied_to(self, applied: int) -> None:
        """The state machine reached ``applied``: serve reads waiting for it (a waiting get
        whose task is not finished waits on, as parked leases do, and is looked at again on
        every apply), check parked leases."""
        queue, now = self.links.queue, monotonic_ms()
        for request in self.table.in_stage(Stage.READ_APPLY):
            if request.read_index <= applied:
                if request.wait_until_ms > now and not queries.wait_is_over(queue, request.body):
                    self.table.move(request, Stage.WAITING_READ)
                    continue
                self.table.pop(request.rid)
                self._serve_read_now(request.reply_to, request.rid, request.body)
        for request in self.table.in_stage(Stage.WAITING_READ):
            if queries.wait_is_over(queue, request.body):
                self.table.pop(request.rid)
                self._serve_read_now(request.reply_to, request.rid, request.body)
        self._have_parked_check = True

    def _check_parked(self) -> None:
        if not self._have_parked_check or not self.leadership.is_leader:
            return
        self._have_parked_check = False
        parked = self.table.in_stage(Stage.PARKED)
        if not parked:
            return
        now_ms = self.links.wall_ms()
        for request in parked:
            if self.links.queue.has_visible(request.body.get("types"), now_ms,
                                            request.body.get("queues")):
                self._dispatch(request)  # under a new serial number (released when parked)

    # ----------------------------------------------------------------- reads

    def flush_reads(self) -> None:
        """Start one ReadIndex round for every read that arrived since the last one."""
        self._check_parked()
        if not self._new_reads:
            return
        rids = [rid for rid in self._new_reads if rid in self.table.pending]
        self._new_reads = []
        if not rids:
            return
        if self.leadership.leader_id is None:
            for rid in rids:
                self.table.move(self.table.pending[rid], Stage.WAIT_LEADER)
            return
        ctx = f"{self.links.node_id}:{next(self._read_seq)}".encode()
        self._read_batches[ctx] = (monotonic_ms(), rids)
        self.links.read_index(ctx)

    def on_read_states(self, read_states: tuple[ReadState, ...], applied: int) -> None:
        """ReadIndex answers: each read of the batch may be served once ``index`` is applied
        (the state machine is at ``applied``)."""
        for rs in read_states:
            batch = self._read_batches.pop(rs.context, None)
            if batch is None:
                continue
            for rid in batch[1]:
                request = self.table.pending.get(rid)
                if request is None:
                    continue
                request.read_index = rs.index
                self.table.move(request, Stage.READ_APPLY)
        self.on_applied_to(applied)

    def _serve_read_now(self, reply_to: ReplyTo, rid: str, query: dict[str, Any]) -> None:
        try:
            value = queries.run_queue_query(self.links.queue, query, self._raft_figures)
        except queries.BadQuery as exc:
            self._send_err(reply_to, rid, ErrorCode.BAD_REQUEST, str(exc))
            return
        self._send_value(reply_to, rid, value)

    def _raft_figures(self) -> dict[str, Any]:
        return queries.raft_figures(self.links.view())

    def _local_value(self, op: str) -> Any:
        if op == "metrics":
            return views.node_metrics(self.links.figures())
        view = self.links.view()
        return queries.health(view) if op == "health" else queries.cluster(view)

    # ----------------------------------------------------------------- answers

    def _send_outcome(self, request: Pending, outcome: Any) -> None:
        reply_to = request.reply_to
        if reply_to.peer is not None:
            self.links.send_peer(reply_to.peer, PeerKind.FWD_RES,
                                 {"rid": request.rid, "outcome": outcome})
        elif reply_to.identity is not None:
            if outcome.get("code") == ErrorCode.DUPLICATE_REQUEST:
                self._send_err(reply_to, request.rid, ErrorCode.DUPLICATE_REQUEST,
                               outcome["message"])
                return
            self.links.replier.send_res(reply_to.identity, request.rid, "outcome", outcome)

    def _send_value(self, reply_to: ReplyTo, rid: str, value: Any) -> None:
        if reply_to.identity is not None:
            self.links.replier.send_res(reply_to.identity, rid, "value", value)

    def _send_err(self, reply_to: ReplyTo, rid: str, code: str, message: str) -> None:
        links = self.links
        if code == ErrorCode.DUPLICATE_REQUEST and reply_to.peer is None:
            # A local client hears "outcome unknown": its command was applied (once) or given
            # up earlier, and its outcome is no longer kept (sessions.py).
            code, message = ErrorCode.TIMEOUT, f"outcome no longer known: {message}"
        leader_id = self.leadership.hint()
        if reply_to.peer is not None:
            links.send_peer(reply_to.peer, PeerKind.FWD_RES, {
                "rid": rid, "code": code, "message": message, "leader_id": leader_id})
        elif reply_to.identity is not None:
            links.replier.send_err(reply_to.identity, rid, code, message, leader_id,
                                   links.http_of(leader_id))
        if code == ErrorCode.BAD_REQUEST:
            self.bad_requests += 1
        else:
            log_event(logger, logging.DEBUG, "request_failed", rid=rid, code=code)


def _is_count(value: Any) -> bool:
    # Bounded so that a deadline computed from it stays a finite float.
    return type(value) is int and 0 <= value <= MAX_FORWARD_MS


def _is_rid(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_RID_CHARS


def _is_code(value: Any) -> bool:
    # isinstance, not type: the default of a fwd_res without a code is an ErrorCode member.
    return isinstance(value, str) and 0 < len(value) <= MAX_CODE_CHARS


def _is_packable(value: Any) -> bool:
    """Whether ``value`` can be encoded again with msgpack (a peer's message decoded from
    msgpack always can; anything else, e.g. an int beyond 64 bits or a lone surrogate,
    would fail when it is proposed or relayed)."""
    try:
        msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):  # UnicodeEncodeError is a ValueError
        return False
    return True


def _is_outcome(value: Any) -> bool:
    """The shape of a state machine outcome (dqueue/queue/state.py), which the API reads:
    ``{"ok": True, "value": map or None}`` or ``{"ok": False, "code": str, "message": str}``."""
    if type(value) is not dict:
        return False
    ok = value.get("ok")
    if ok is True:
        return value.get("value") is None or type(value.get("value")) is dict
    return (ok is False and _is_code(value.get("code"))
            and type(value.get("message")) is str)


def _is_empty_lease(outcome: Any) -> bool:
    if not isinstance(outcome, dict) or not outcome.get("ok"):
        return False
    value = outcome.get("value")
    return isinstance(value, dict) and value.get("tasks") == []
