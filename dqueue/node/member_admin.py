"""Membership changes asked over IPC (``POST /cluster/members`` and the rest, docs/http-api.md).

The API process sends a command ``{"op": "member_add", "id", "raft_addr", "http_addr",
"public_key"?}``, ``{"op": "member_promote", "id"}`` or ``{"op": "member_remove", "id"}``. The
leader checks it against the configuration in force, proposes it as one CONF_CHANGE entry
(``Raft.propose_conf_change``, one server at a time: thesis 4.1) and answers once that entry
is applied, that is committed. A node that does not lead forwards it to the leader (``fwd``)
and relays the answer; with no leader known it answers ``no_leader``, which the HTTP API turns
into a ``503`` with the leader hint.

Removing the leader itself first hands leadership to the most up-to-date other voter (thesis
3.10) and answers ``no_leader`` naming it: the client asks again there, and the new leader
removes the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgpack

from dqueue.logs import log_event
from dqueue.node.ipc_server import CmdRequest, IpcServer
from dqueue.node.requests import monotonic_ms
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.ipc import MAX_TIMEOUT_MS
from dqueue.protocol.kinds import PeerKind
from dqueue.protocol.member_context import encode_context, is_member_id, member_context
from dqueue.raft import (
    ConfChange,
    ConfChangeKind,
    Entry,
    Membership,
    ProposalDropped,
    Raft,
    Role,
    Status,
    apply_conf_change,
)

logger = logging.getLogger(__name__)

MEMBER_OPS = {"member_add": ConfChangeKind.ADD_LEARNER,
              "member_promote": ConfChangeKind.PROMOTE,
              "member_remove": ConfChangeKind.REMOVE}
_FIELDS = {"member_add": {"op", "id", "raft_addr", "http_addr", "public_key"},
           "member_promote": {"op", "id"}, "member_remove": {"op", "id"}}


class BadChange(ValueError):
    """A change that is refused before anything is proposed: ``code`` and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def membership_plain(m: Membership) -> dict[str, Any]:
    """A configuration as the API shows it."""
    return {"voters": sorted(m.voters), "learners": sorted(m.learners)}


def parse_change(cmd: dict[str, Any], secure: bool) -> ConfChange:
    """The change a member command asks for.

    Raises:
        BadChange: ``invalid_field`` / ``unknown_field`` / ``missing_field``, naming the field.
    """
    op = cmd.get("op")
    extra = sorted(repr(k) if type(k) is not str else k for k in cmd if k not in _FIELDS[op])
    if extra:
        raise BadChange(ErrorCode.UNKNOWN_FIELD, f"{extra[0][:64]}: unknown field")
    node_id = cmd.get("id")
    if not is_member_id(node_id):
        raise BadChange(ErrorCode.INVALID_FIELD,
                        "id: expected 1 to 64 letters, digits, '_', '.' or '-'")
    kind = MEMBER_OPS[op]
    if kind is not ConfChangeKind.ADD_LEARNER:
        return ConfChange(kind, node_id)
    for name in ("raft_addr", "http_addr"):
        if name not in cmd:
            raise BadChange(ErrorCode.MISSING_FIELD, f"{name}: required")
    if secure and cmd.get("public_key") is None:
        raise BadChange(ErrorCode.MISSING_FIELD,
                        "public_key: required in a cluster with keys (docs/security.md)")
    try:
        ctx = member_context(cmd["raft_addr"], cmd["http_addr"], cmd.get("public_key"))
    except ValueError as exc:
        raise BadChange(ErrorCode.INVALID_FIELD, str(exc)) from None
    return ConfChange(kind, node_id, encode_context(ctx))


def check_fits(m: Membership, change: ConfChange) -> None:
    """Raise ``BadChange`` when ``change`` does not fit the configuration ``m``."""
    node_id = change.node_id
    if change.kind is ConfChangeKind.ADD_LEARNER and m.is_member(node_id):
        raise BadChange(ErrorCode.MEMBER_EXISTS, f"{node_id} is a member already")
    if change.kind is not ConfChangeKind.ADD_LEARNER and not m.is_member(node_id):
        raise BadChange(ErrorCode.NOT_FOUND, f"{node_id} is not a member")
    if change.kind is ConfChangeKind.PROMOTE and not m.is_learner(node_id):
        raise BadChange(ErrorCode.INVALID_STATE, f"{node_id} is a voter already")
    try:
        apply_conf_change(m, change)
    except ValueError as exc:
        raise BadChange(ErrorCode.INVALID_STATE, str(exc)) from None


def transfer_target(st: Status) -> str | None:
    """On a leader: the other voter with the longest log, to hand leadership to (a learner
    may never lead); None when there is none or this member does not lead."""
    if st.role is not Role.LEADER:
        return None
    voters = sorted(p for p in st.progress if p != st.id and st.membership.is_voter(p))
    if not voters:
        return None
    return max(voters, key=lambda p: st.progress[p].match_index)


@dataclass(frozen=True)
class Origin:
    """Who asked for a change: the local API (``identity``) or a member that forwarded it."""

    rid: str
    identity: bytes | None = None
    peer: str | None = None


@dataclass
class _Waiting:
    origin: Origin
    term: int
    deadline_ms: float
    change: ConfChange


class MemberAdmin:
    """Proposes the membership changes asked over IPC and answers them once committed.

    A node that does not lead forwards the command to the leader over the peer transport
    (``fwd``, as the router forwards other writes) and relays the leader's ``fwd_res``; a
    forwarded command is never forwarded again (a leader that lost its role answers
    ``no_leader`` with its hint).

    Args:
        raft: the Raft core.
        replier: the IPC server (answers).
        send_peer: sends one message to a member (``PeerTransport.send``).
        http_of: member id -> its HTTP address (for leader hints), or None.
        secure: the cluster uses keys (a new member must bring its public key).
    """

    def __init__(self, raft: Raft, replier: IpcServer, send_peer: Callable[[str, bytes, Any], bool],
                 http_of: Callable[[str | None], str | None], secure: bool) -> None:
        self.raft = raft
        self.replier = replier
        self.send_peer = send_peer
        self.http_of = http_of
        self.secure = secure
        self.waiting: dict[int, _Waiting] = {}  # entry index -> the request it answers
        # Requests of the local API forwarded to a leader: rid -> (origin, deadline, leader).
        self.forwarded: dict[str, tuple[Origin, float, str]] = {}

    def accept(self, req: CmdRequest) -> None:
        """A member command from the local API."""
        self._accept(Origin(req.rid, identity=req.identity), req.cmd, req.timeout_ms)

    def on_peer(self, sender: str, kind: bytes, body: Any) -> bool:
        """A peer's ``fwd`` of a member command, or the ``fwd_res`` of one this node
        forwarded: True when it was one (handled); any value is taken without raising."""
        if type(body) is not dict or not _is_rid(body.get("rid")):
            return False
        rid = body["rid"]
        if kind == PeerKind.FWD:
            cmd, timeout_ms = body.get("cmd"), body.get("timeout_ms")
            if type(cmd) is not dict or cmd.get("op") not in MEMBER_OPS:
                return False
            if type(timeout_ms) is not int or not 0 <= timeout_ms <= MAX_TIMEOUT_MS:
                return True  # malformed: dropped, the sender times out
            self._accept(Origin(rid, peer=sender), cmd, timeout_ms)
            return True
        if kind != PeerKind.FWD_RES or rid not in self.forwarded:
            return False
        origin, _, _ = self.forwarded.pop(rid)
        outcome = body.get("outcome")
        if type(outcome) is dict and type(outcome.get("ok")) is bool and _is_packable(outcome):
            self._send_outcome(origin, outcome)
            return True
        code, message, leader = body.get("code"), body.get("message"), body.get("leader_id")
        if not (_is_code(code) and type(message) is str):
            code, message = ErrorCode.TIMEOUT, "unreadable answer from the leader"
        self._send_err(origin, code, message[:1024], leader if _is_rid(leader) else None)
        return True

    def _accept(self, origin: Origin, cmd: dict[str, Any], timeout_ms: int) -> None:
        raft = self.raft
        try:
            change = parse_change(cmd, self.secure)
        except BadChange as exc:
            self._refuse(origin, exc.code, str(exc))
            return
        if raft.role is not Role.LEADER:
            leader = raft.leader_id
            if (origin.peer is None and leader is not None and leader != raft.id
                    and self.send_peer(leader, PeerKind.FWD, {
                        "rid": origin.rid, "cmd": cmd, "timeout_ms": timeout_ms,
                        "wait_ms": 0})):
                self.forwarded[origin.rid] = (origin, monotonic_ms() + timeout_ms, leader)
                return
            self._send_err(origin, ErrorCode.NO_LEADER, "this node does not lead: ask the "
                           "leader", leader)
            return
        if change.kind is ConfChangeKind.REMOVE and change.node_id == raft.id:
            self._hand_over(origin)
            return
        try:
            check_fits(raft.membership, change)
            raft.propose_conf_change(change)
        except BadChange as exc:
            self._refuse(origin, exc.code, str(exc))
            return
        except ProposalDropped:
            self._refuse(origin, ErrorCode.MEMBERSHIP_CHANGE_PENDING,
                         "another membership change (or this leader's first entry) is not "
                         "committed yet: try again shortly")
            return
        index = raft.status().last_index
        self.waiting[index] = _Waiting(origin, raft.current_term,
                                       monotonic_ms() + timeout_ms, change)
        log_event(logger, logging.INFO, "membership_change_proposed", index=index,
                  kind=change.kind.name.lower(), member=change.node_id)

    def on_leader_known(self, leader_id: str) -> None:
        """A new leader is known: what was forwarded to another one is answered ``no_leader``
        naming it, so the client asks again at once rather than at its deadline (it was
        applied or lost: asked again, an applied change is refused as not fitting)."""
        for rid, (origin, _, leader) in list(self.forwarded.items()):
            if leader != leader_id:
                del self.forwarded[rid]
                self._send_err(origin, ErrorCode.NO_LEADER, f"the leader changed to "
                               f"{leader_id}: ask again", leader_id)

    def _hand_over(self, origin: Origin) -> None:
        """The leader is asked to remove itself: transfer leadership first (thesis 3.10)."""
        target = transfer_target(self.raft.status())
        if target is None:
            self._refuse(origin, ErrorCode.INVALID_STATE, "cannot remove the last voter")
            return
        self.raft.transfer_leadership(target)
        log_event(logger, logging.INFO, "leadership_transfer", target=target,
                  reason="member_remove")
        self._send_err(origin, ErrorCode.NO_LEADER, f"leadership is handed to {target} "
                       f"first: ask it to remove {self.raft.id}", target)

    def on_applied(self, entries: Iterable[Entry]) -> None:
        """Committed entries were applied: answer the changes they carry (or lost)."""
        if not self.waiting:
            return
        for entry in entries:
            waiting = self.waiting.pop(entry.index, None)
            if waiting is None:
                continue
            if entry.term == waiting.term:
                self._send_outcome(waiting.origin, {
                    "ok": True, "value": {"id": waiting.change.node_id,
                                          "change": waiting.change.kind.name.lower(),
                                          "index": entry.index,
                                          **membership_plain(self.raft.membership)}})
            else:  # another leader's entry took its place: the change was not made
                self._send_err(waiting.origin, ErrorCode.NO_LEADER, "leadership changed "
                               "before the change committed; it was not made: ask again",
                               self.raft.leader_id)

    def expire(self, now_ms: float) -> None:
        """Answer the changes whose deadline passed (they may still commit)."""
        for index, waiting in list(self.waiting.items()):
            if waiting.deadline_ms <= now_ms:
                del self.waiting[index]
                self._send_err(waiting.origin, ErrorCode.TIMEOUT, "the change was not "
                               "committed within the deadline; check GET /cluster",
                               self.raft.leader_id)
        for rid, (origin, deadline_ms, _) in list(self.forwarded.items()):
            if deadline_ms <= now_ms:
                del self.forwarded[rid]
                self._send_err(origin, ErrorCode.TIMEOUT, "the leader did not answer within "
                               "the deadline; check GET /cluster", self.raft.leader_id)

    def fail_all(self, code: str, message: str) -> None:
        """Answer every waiting change with an error (at exit)."""
        origins = [w.origin for w in self.waiting.values()]
        origins += [origin for origin, _, _ in self.forwarded.values()]
        for origin in origins:
            self._send_err(origin, code, message, None)
        self.waiting.clear()
        self.forwarded.clear()

    # ----------------------------------------------------------------- answers

    def _refuse(self, origin: Origin, code: str, message: str) -> None:
        self._send_outcome(origin, {"ok": False, "code": code, "message": message})

    def _send_outcome(self, origin: Origin, outcome: dict[str, Any]) -> None:
        if origin.peer is not None:
            self.send_peer(origin.peer, PeerKind.FWD_RES, {"rid": origin.rid,
                                                           "outcome": outcome})
        elif origin.identity is not None:
            self.replier.send_res(origin.identity, origin.rid, "outcome", outcome)

    def _send_err(self, origin: Origin, code: str, message: str, leader: str | None) -> None:
        if origin.peer is not None:
            self.send_peer(origin.peer, PeerKind.FWD_RES, {
                "rid": origin.rid, "code": code, "message": message, "leader_id": leader})
        elif origin.identity is not None:
            self.replier.send_err(origin.identity, origin.rid, code, message, leader,
                                  self.http_of(leader))


def _is_rid(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= 1_024


def _is_code(value: Any) -> bool:
    # isinstance: an ErrorCode member is a str (this node's own, before any encoding).
    return isinstance(value, str) and 0 < len(value) <= 64


def _is_packable(value: Any) -> bool:
    try:
        msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return False
    return True
