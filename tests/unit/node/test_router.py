"""RequestRouter against narrow fakes of its links (router_links.py), with a real queue state:
where requests go and how they are answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.node import queries, views
from dqueue.node.codec import encode_item
from dqueue.node.ipc_server import CmdRequest, ReadRequest
from dqueue.node.leadership import Leadership
from dqueue.node.queries import NodeView
from dqueue.node.requests import Stage, monotonic_ms
from dqueue.node.router import RequestRouter
from dqueue.node.router_links import RouterLinks
from dqueue.node.views import NodeFigures
from dqueue.protocol.kinds import PeerKind
from dqueue.queue import QueueState, command_from_plain
from dqueue.queue.sessions import ClientSession, apply_once
from dqueue.raft import ReadState, Role, Status
from tests.depth import examples
from tests.unit.plain_values import HASHABLE, PLAIN

ENQUEUE = {"op": "enqueue", "tasks": [{"id": "t1", "type": "mail"}]}
LEASE = {"op": "lease", "worker_id": "w", "types": ["mail"], "max_tasks": 1}


@dataclass
class Transport:
    """``send_peer``: what the router sends to other nodes."""

    sent: list[tuple[str, bytes, Any]] = field(default_factory=list)
    up: bool = True

    def send(self, peer: str, kind: bytes, body: Any) -> bool:
        if self.up:
            self.sent.append((peer, kind, body))
        return self.up


@dataclass
class Ipc:
    """The replier: answers to local API threads."""

    answers: list[tuple[bytes, str, str, Any]] = field(default_factory=list)

    def send_res(self, identity: bytes, rid: str, key: str, value: Any) -> None:
        self.answers.append((identity, rid, key, value))

    def send_err(self, identity: bytes, rid: str, code: str, message: str,
                 leader_id: str | None = None, leader_http: str | None = None) -> None:
        self.answers.append((identity, rid, "err", {"code": code, "leader_id": leader_id,
                                                    "leader_http": leader_http}))


STATUS = Status(id="n1", role=Role.LEADER, term=3, vote="n1", leader_id="n1", commit=7,
                applied=7, last_index=7, snapshot_index=0)
VIEW = NodeView(node_id="n1", status=STATUS, leader_http="h1:80",
                members={"n1": "h1:9090", "n2": "h2:9090"}, http_addrs={"n1": "h1:80"},
                stopping=False)


class Node:
    """Narrow fakes of everything the router is linked to, with a real queue state.

    ``leadership`` is the router's one source of the leader: a test changes the leader there.
    """

    def __init__(self, role: Role = Role.LEADER, leader_id: str | None = "n1") -> None:
        self.heard = True  # the leader was heard from within an election timeout
        self.leadership = Leadership("n1", lambda: self.heard, role, leader_id, leader_id)
        self.transport = Transport()
        self.ipc = Ipc()
        self.queue = QueueState()
        self.applied = 0
        self.stopping = False
        self.read_contexts: list[bytes] = []
        self.proposed: list[tuple[str, dict[str, Any]]] = []
        self.sessions: list[ClientSession | None] = []  # the session of each proposal
        self.http = {"n2": "n2:80"}  # members' HTTP addresses (for leader hints)

    def links(self) -> RouterLinks:
        return RouterLinks(
            node_id="n1", leadership=self.leadership, replier=self.ipc,
            send_peer=self.transport.send, propose=self.propose,
            read_index=self.read_contexts.append, queue=self.queue, wall_ms=lambda: 1_000,
            is_stopping=lambda: self.stopping,
            http_of=lambda member: None if member is None else self.http.get(member),
            view=lambda: VIEW, figures=lambda: NodeFigures(VIEW, {"ready_total": 4}),
            max_wait_ms=20_000)

    def propose(self, rid: str, cmd: dict[str, Any], command: Any = None,
                session: ClientSession | None = None) -> None:
        self.proposed.append((rid, cmd))
        self.sessions.append(session)

    def wall_ms(self) -> int:
        return 1_000

    def apply(self, router: RequestRouter, rid: str, cmd: dict[str, Any],
              session: ClientSession | None = None) -> dict[str, Any]:
        self.applied += 1
        command = command_from_plain({**cmd, "now_ms": 1_000})
        outcome = (self.queue.apply(command, self.applied) if session is None
                   else apply_once(self.queue, command, self.applied, session))
        router.on_applied(rid, outcome)
        router.on_applied_to(self.applied)
        return outcome


def _cmd(rid: str, cmd: dict[str, Any], timeout_ms: int = 1_000, wait_ms: int = 0) -> CmdRequest:
    return CmdRequest(b"api", rid, cmd, timeout_ms, wait_ms)


def test_leader_proposes_and_answers_when_the_entry_with_the_rid_applies():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    assert p.proposed == [("r1", ENQUEUE)]
    p.apply(router, "other", {"op": "tick"})  # an entry without our rid answers nothing
    assert p.ipc.answers == []
    assert router.command_ms.count == 0
    outcome = p.apply(router, "r1", ENQUEUE)
    assert p.ipc.answers == [(b"api", "r1", "outcome", outcome)]
    assert router.table.pending == {}
    assert router.command_ms.count == 1  # intake to outcome, counted once per answered command


def test_bad_command_is_refused_naming_the_field_and_never_proposed():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", {"op": "enqueue", "tasks": []}))
    assert p.proposed == []
    assert p.ipc.answers[0][3]["code"] == "bad_request"
    assert router.bad_requests == 1


def test_follower_forwards_and_answers_from_the_leaders_fwd_res():
    p = Node(role=Role.FOLLOWER, leader_id="n2")
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    assert [(peer, kind) for peer, kind, _ in p.transport.sent] == [("n2", PeerKind.FWD)]
    assert p.transport.sent[0][2]["cmd"] == ENQUEUE
    outcome = {"ok": True, "value": {"x": 1}}
    assert router.on_peer("n2", PeerKind.FWD_RES, {"rid": "r1", "outcome": outcome})
    assert p.ipc.answers == [(b"api", "r1", "outcome", outcome)]
    assert router.command_ms.count == 1


def test_not_leader_answer_sends_the_command_to_the_new_leader():
    p = Node(role=Role.FOLLOWER, leader_id="n2")
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    p.leadership.leader_id = "n3"
    router.on_peer("n2", PeerKind.FWD_RES, {"rid": "r1", "code": "not_leader", "leader_id": "n3"})
    assert [peer for peer, _, _ in p.transport.sent] == ["n2", "n3"]
    assert p.ipc.answers == []


def test_leader_refuses_a_forward_when_it_no_longer_leads():
    p = Node(role=Role.FOLLOWER, leader_id="n3")
    router = RequestRouter(p.links())
    body = {"rid": "r1", "cmd": ENQUEUE, "timeout_ms": 500, "wait_ms": 0}
    assert router.on_peer("n2", PeerKind.FWD, body)
    assert p.transport.sent == [("n2", PeerKind.FWD_RES, {"rid": "r1", "code": "not_leader",
                                                       "message": "not the leader",
                                                       "leader_id": "n3"})]
    assert not router.on_peer("n2", PeerKind.FWD, {"rid": "r2", "cmd": ENQUEUE, "timeout_ms": -1,
                                               "wait_ms": 0})


def test_without_a_leader_the_deadline_answers_no_leader_with_the_last_hint():
    p = Node(role=Role.FOLLOWER, leader_id=None)
    p.leadership.last_leader_id = "n2"
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE, timeout_ms=10))
    assert router.table.count(Stage.WAIT_LEADER) == 1
    router.expire(monotonic_ms() + 11)
    answer = p.ipc.answers[0][3]
    assert answer == {"code": "no_leader", "leader_id": "n2", "leader_http": "n2:80"}


def test_a_dropped_proposal_waits_and_goes_out_when_a_leader_is_known():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    router.accept_command(_cmd("r2", ENQUEUE))
    router.table.pop("r2")  # answered already (say, its deadline passed)
    assert router.table.count(Stage.PROPOSED) == 1
    # The core refused the turn's batch entry (a leadership transfer is under way).
    router.on_proposals_dropped(["r1", "r2"])
    assert router.table.count(Stage.WAIT_LEADER) == 1
    assert p.ipc.answers == []
    p.leadership.role, p.leadership.leader_id = Role.FOLLOWER, "n2"
    router.on_leader_known()
    assert [peer for peer, _, _ in p.transport.sent] == ["n2"]


def test_empty_long_poll_lease_parks_then_is_proposed_again_when_a_task_is_visible():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", LEASE, wait_ms=5_000))
    assert p.proposed == []  # nothing visible: parked without a log entry
    assert router.table.count(Stage.PARKED) == 1
    assert p.ipc.answers == []
    p.apply(router, "r2", ENQUEUE)  # makes a mail task visible
    router.flush_reads()  # the loop turn checks parked leases
    assert [rid for rid, _ in p.proposed] == ["r1"]
    outcome = p.apply(router, "r1", LEASE)
    assert p.ipc.answers == [(b"api", "r1", "outcome", outcome)]
    assert outcome["value"]["tasks"][0]["id"] == "t1"
    assert router.command_ms.count == 0  # a long poll waits on purpose: not a commit latency


def test_parked_lease_is_answered_empty_at_the_end_of_its_wait():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", LEASE, wait_ms=20))
    p.apply(router, "r1", LEASE)
    router.expire(monotonic_ms() + 21)
    assert p.ipc.answers == [(b"api", "r1", "outcome", {"ok": True, "value": {"tasks": []}})]


def test_reads_of_one_turn_share_one_read_index_round():
    p = Node()
    router = RequestRouter(p.links())
    for rid in ("a", "b"):
        router.accept_read(ReadRequest(b"api", rid, {"op": "get", "id": "t1"}, 1_000, False))
    router.flush_reads()
    assert len(p.read_contexts) == 1
    router.on_read_states((ReadState(1, p.read_contexts[0]),), p.applied)
    assert p.ipc.answers == []  # index 1 is not applied yet
    p.apply(router, "w", ENQUEUE)
    assert sorted((rid, value["id"]) for _, rid, _, value in p.ipc.answers) == [("a", "t1"),
                                                                               ("b", "t1")]


@pytest.mark.parametrize("op", ["health", "cluster", "metrics"])
def test_stopping_node_refuses_commands_but_local_reads_still_work(op, monkeypatch):
    p = Node()
    p.stopping = True
    router = RequestRouter(p.links())
    monkeypatch.setattr(router, "_local_value", lambda name: {"op": name})
    router.accept_command(_cmd("r1", ENQUEUE))
    router.accept_read(ReadRequest(b"api", "r2", {"op": op}, 1_000, False))
    assert p.ipc.answers[0][3]["code"] == "shutting_down"
    assert p.ipc.answers[1] == (b"api", "r2", "value", {"op": op})


def test_local_reads_render_the_figures_the_node_gives_without_a_read_index_round():
    p = Node(role=Role.FOLLOWER, leader_id=None)  # answered locally, leader or not
    router = RequestRouter(p.links())
    for rid, op in (("h", "health"), ("c", "cluster"), ("m", "metrics")):
        router.accept_read(ReadRequest(b"api", rid, {"op": op}, 1_000, False))
    (_, _, _, health), (_, _, _, cluster), (_, _, _, metrics) = p.ipc.answers
    assert health == queries.health(VIEW)
    assert cluster == queries.cluster(VIEW)
    assert metrics == views.node_metrics(NodeFigures(VIEW, {"ready_total": 4}))
    assert (metrics["ready_total"], metrics["term"], metrics["is_leader"]) == (4, 3, 1)
    assert p.read_contexts == []


def test_a_stale_stats_read_carries_the_raft_figures_of_the_view():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_read(ReadRequest(b"api", "s", {"op": "stats"}, 1_000, True))
    (_, _, key, value), = p.ipc.answers
    assert key == "value" and value["raft"] == queries.raft_figures(VIEW)


# ----------------------------------------------------------------- client sessions


def test_commands_carry_this_clients_serial_numbers_and_lowest_unanswered():
    p = Node()
    router = RequestRouter(p.links())
    client = router.table.client_id
    assert client.startswith("n1.")
    assert RequestRouter(Node().links()).table.client_id != client  # one id per incarnation
    router.accept_command(_cmd("r1", ENQUEUE))
    router.accept_command(_cmd("r2", {"op": "tick"}))
    router.accept_command(_cmd("bad", {"op": "enqueue", "tasks": []}))  # refused: no number
    p.apply(router, "r1", ENQUEUE, p.sessions[0])
    router.accept_command(_cmd("r3", {"op": "tick"}))
    assert p.sessions == [ClientSession(client, 1, 1), ClientSession(client, 2, 1),
                          ClientSession(client, 3, 2)]


def test_a_forward_carries_the_originators_session_and_the_leader_proposes_it():
    follower = Node(role=Role.FOLLOWER, leader_id="n2")
    router = RequestRouter(follower.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    body = follower.transport.sent[0][2]
    assert body["session"] == [router.table.client_id, 1, 1]
    leader = Node()
    assert RequestRouter(leader.links()).on_peer("n3", PeerKind.FWD, body)
    assert leader.sessions == [ClientSession(router.table.client_id, 1, 1)]
    assert not RequestRouter(leader.links()).on_peer("n3", PeerKind.FWD,
                                                     {**body, "session": ["c", -1, 0]})


def test_a_forwarded_command_is_sent_again_as_soon_as_a_new_leader_is_known():
    p = Node(role=Role.FOLLOWER, leader_id="n2")
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    p.leadership.leader_id = None  # the leader died
    router.on_tick(monotonic_ms())
    assert len(p.transport.sent) == 1  # nobody to send it to yet
    p.leadership.leader_id = "n3"
    router.on_leader_known()
    (_, _, first), (peer, kind, again) = p.transport.sent
    assert (peer, kind) == ("n3", PeerKind.FWD)
    assert (again["rid"], again["session"], again["cmd"]) == ("r1", first["session"], ENQUEUE)
    assert router.counters["requests_resent_total"] == 1
    # A late refusal by the dead leader's process changes nothing; the new leader answers.
    assert router.on_peer("n2", PeerKind.FWD_RES, {"rid": "r1", "code": "shutting_down"})
    assert p.ipc.answers == []
    outcome = {"ok": True, "value": {"x": 1}}
    assert router.on_peer("n3", PeerKind.FWD_RES, {"rid": "r1", "outcome": outcome})
    assert p.ipc.answers == [(b"api", "r1", "outcome", outcome)]


def test_the_leader_answers_a_repeat_from_the_session_table_without_proposing_it():
    p = Node()
    router = RequestRouter(p.links())
    body = {"rid": "r1", "cmd": ENQUEUE, "timeout_ms": 500, "wait_ms": 0,
            "session": ["n2.aa", 4, 3]}
    router.on_peer("n2", PeerKind.FWD, body)
    outcome = p.apply(router, "r1", ENQUEUE, ClientSession("n2.aa", 4, 3))
    router.on_peer("n2", PeerKind.FWD, body)  # sent again: its leader changed meanwhile
    assert len(p.proposed) == 1
    assert p.transport.sent == [("n2", PeerKind.FWD_RES, {"rid": "r1", "outcome": outcome})] * 2
    # Below first_unanswered: applied and answered long ago, refused, never proposed.
    p.apply(router, "r2", {"op": "tick"}, ClientSession("n2.aa", 9, 9))
    router.on_peer("n2", PeerKind.FWD, {**body, "rid": "r0", "session": ["n2.aa", 2, 2]})
    assert len(p.proposed) == 1
    assert p.transport.sent[-1][2]["code"] == "duplicate_request"
    assert router.table.pending == {}
    assert router.counters["session_repeats_answered_total"] == 2


def test_a_deposed_leader_sends_its_own_proposed_commands_to_the_next_leader():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    router.on_peer("n3", PeerKind.FWD, {"rid": "x1", "cmd": {"op": "tick"}, "timeout_ms": 500,
                                    "wait_ms": 0, "session": ["n3.bb", 1, 1]})
    p.leadership.role, p.leadership.leader_id = Role.FOLLOWER, None
    router.on_lost_leadership()
    assert router.table.count(Stage.WAIT_LEADER) == 1  # n3 sends x1 again itself
    p.leadership.leader_id = "n2"
    router.on_leader_known()
    assert [(peer, body["rid"], body["session"]) for peer, _, body in p.transport.sent] == [
        ("n2", "r1", [router.table.client_id, 1, 1])]
    # Its old entry committed after all: the local apply answers it.
    outcome = p.apply(router, "r1", ENQUEUE, p.sessions[0])
    assert p.ipc.answers == [(b"api", "r1", "outcome", outcome)]


def test_a_command_waiting_for_a_leader_is_answered_when_its_entry_applies():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    router.on_proposals_dropped(["r1"])
    outcome = p.apply(router, "r1", ENQUEUE, p.sessions[0])
    assert p.ipc.answers == [(b"api", "r1", "outcome", outcome)]


def test_a_parked_lease_is_proposed_again_under_a_new_serial_number():
    p = Node()
    router = RequestRouter(p.links())
    p.apply(router, "r0", {"op": "enqueue", "tasks": [{"id": "t0", "type": "mail"}]})
    router.accept_command(_cmd("r1", LEASE, wait_ms=5_000))  # t0 visible: proposed
    p.apply(router, "rx", LEASE)  # another worker's lease takes t0 first
    p.apply(router, "r1", LEASE, p.sessions[0])  # so r1 applies empty and parks
    assert router.table.count(Stage.PARKED) == 1
    p.apply(router, "r2", ENQUEUE)
    router.flush_reads()
    assert [s.seq for s in p.sessions] == [1, 2]  # not a repeat of the empty lease
    outcome = p.apply(router, "r1", LEASE, p.sessions[1])
    assert outcome["value"]["tasks"][0]["id"] == "t1"
    assert p.ipc.answers == [(b"api", "r1", "outcome", outcome)]


# ------------------------------------------------------------------ hostile peers

class _PackingNode(Node):
    """The fakes whose sends, answers and proposals are encoded as the real ones
    are (msgpack), so a value that could not leave this process fails the test."""

    def __init__(self, role: Role, leader_id: str | None) -> None:
        super().__init__(role=role, leader_id=leader_id)
        real_send, real_res, real_err = (self.transport.send, self.ipc.send_res,
                                         self.ipc.send_err)

        def send(peer: str, kind: bytes, body: Any) -> bool:
            msgpack.packb(body, use_bin_type=True)
            return real_send(peer, kind, body)

        def send_res(identity: bytes, rid: str, key: str, value: Any) -> None:
            msgpack.packb({"rid": rid, key: value}, use_bin_type=True)
            real_res(identity, rid, key, value)

        def send_err(identity: bytes, rid: str, code: str, message: str,
                     leader_id: str | None = None, leader_http: str | None = None) -> None:
            msgpack.packb([rid, code, message, leader_id, leader_http], use_bin_type=True)
            real_err(identity, rid, code, message, leader_id, leader_http)

        self.transport.send, self.ipc.send_res, self.ipc.send_err = send, send_res, send_err

    def propose(self, rid: str, cmd: dict[str, Any], command: Any = None,
                session: ClientSession | None = None) -> None:
        encode_item(rid, {**cmd, "now_ms": 1}, session)
        super().propose(rid, cmd, command, session)


_RID = st.one_of(st.just("r1"), st.just("f1"), PLAIN)
_ANY_TEXT = st.one_of(st.text(alphabet=st.characters(exclude_categories=()), min_size=1,
                              max_size=8), st.just("t\ud800"))
_PAYLOAD = st.one_of(PLAIN, st.just(1 << 70), st.just({"k": "\udfff"}))
# Commands that pass command_from_plain with any text in their ids and any JSON-ish payload
# (ints beyond 64 bits included): what a validated command may still carry.
_VALID_CMDS = st.one_of(
    st.sampled_from([ENQUEUE, LEASE, {"op": "tick"}, {"op": "purge"}]),
    st.builds(lambda i, t, p: {"op": "enqueue", "tasks": [{"id": i, "type": t, "payload": p}]},
              _ANY_TEXT, _ANY_TEXT, _PAYLOAD),
    st.builds(lambda i, w: {"op": "ack", "id": i, "worker_id": w}, _ANY_TEXT, _ANY_TEXT),
)


@st.composite
def _fwd_body(draw: st.DrawFn) -> dict[Any, Any]:
    # Mostly well-formed around one odd value, so that most reach the proposal path.
    cmd = draw(st.one_of(PLAIN, _VALID_CMDS, _VALID_CMDS, _VALID_CMDS))
    if isinstance(cmd, dict) and not draw(st.integers(0, 4)):
        cmd = {**cmd, draw(st.one_of(st.sampled_from(["tasks", "worker_id", "op", "now_ms"]),
                                     HASHABLE)):
               draw(PLAIN)}
    body: dict[Any, Any] = {"rid": draw(_RID), "cmd": cmd,
                            "timeout_ms": draw(st.integers(0, 10_000) if draw(st.integers(0, 4))
                                               else PLAIN),
                            "wait_ms": draw(st.just(0) if draw(st.integers(0, 4)) else PLAIN)}
    if not draw(st.integers(0, 4)):
        body["session"] = draw(st.one_of(PLAIN, st.just(["c", 1, 1])))
    return body


@st.composite
def _fwd_res_body(draw: st.DrawFn) -> dict[Any, Any]:
    body: dict[Any, Any] = {"rid": draw(_RID)}
    if draw(st.booleans()):
        body["outcome"] = draw(st.one_of(
            PLAIN, st.fixed_dictionaries({"ok": PLAIN, "value": PLAIN}),
            st.fixed_dictionaries({"ok": st.just(False), "code": PLAIN, "message": PLAIN})))
    else:
        body["code"] = draw(st.one_of(st.just("not_leader"), PLAIN))
        body["message"] = draw(PLAIN)
    return body


@settings(max_examples=examples(400), deadline=None)
@given(st.sampled_from([Role.LEADER, Role.FOLLOWER]), st.sampled_from(["n2", "n3"]),
       st.one_of(st.tuples(st.just(PeerKind.FWD), _fwd_body()),
                 st.tuples(st.just(PeerKind.FWD_RES), _fwd_res_body()),
                 st.tuples(st.binary(max_size=8), PLAIN)))
def test_any_peer_message_is_taken_or_refused_without_raising(role, sender, message):
    """No value at all in a fwd or fwd_res makes on_peer, or what it sends, proposes or
    relays, raise; an outcome relayed to the local API has the state machine's shape."""
    kind, body = message
    p = _PackingNode(role, "n2" if role is Role.FOLLOWER else "n1")
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))  # forwarded to n2 by a follower
    p.ipc.answers.clear()
    assert router.on_peer(sender, kind, body) in (True, False)
    for _, _, key, value in p.ipc.answers:
        if key == "outcome":
            assert isinstance(value, dict) and isinstance(value.get("ok"), bool)
            assert isinstance(value.get("value"), dict) or value.get("value") is None or (
                not value["ok"] and isinstance(value.get("code"), str))


def test_a_malformed_outcome_is_refused_and_the_request_still_waits():
    p = Node(role=Role.FOLLOWER, leader_id="n2")
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    for outcome in (None, 5, {"ok": "yes"}, {"ok": True, "value": [1]},
                    {"ok": False, "code": 3, "message": "m"}, {"ok": True, "value": {1 << 70: 1}}):
        assert router.on_peer("n2", PeerKind.FWD_RES, {"rid": "r1", "outcome": outcome}) is False
    assert p.ipc.answers == []
    assert router.table.pending["r1"].stage is Stage.FORWARDED


def test_a_forward_with_a_command_that_cannot_be_encoded_again_is_refused():
    p = Node()
    router = RequestRouter(p.links())
    bad = {"op": "enqueue", "tasks": [{"id": "t\ud800", "type": "x"}]}
    for cmd in (bad, {**ENQUEUE, "tasks": [{"id": "t", "type": "x", "payload": 1 << 70}]}):
        body = {"rid": "f1", "cmd": cmd, "timeout_ms": 1_000, "wait_ms": 0}
        assert router.on_peer("n2", PeerKind.FWD, body) is False
    assert p.proposed == []
    huge = {"rid": "f2", "cmd": ENQUEUE, "timeout_ms": 10 ** 400, "wait_ms": 0}
    assert router.on_peer("n2", PeerKind.FWD, huge) is False


def test_a_leader_not_heard_from_within_an_election_timeout_is_not_named():
    p = Node(role=Role.FOLLOWER, leader_id="n2")
    router = RequestRouter(p.links())
    router.accept_read(ReadRequest(b"api", "r1", {"op": "nope"}, 100, False))
    assert p.ipc.answers[-1][3]["leader_id"] == "n2"  # heard from recently
    p.heard = False
    router.accept_read(ReadRequest(b"api", "r2", {"op": "nope"}, 100, False))
    assert p.ipc.answers[-1][3]["leader_id"] is None


def test_a_candidate_does_not_name_the_last_leader():
    """It campaigns because that leader went silent: a 503 naming it sent clients to a node
    that was down (issue 13)."""
    p = Node(role=Role.CANDIDATE, leader_id=None)
    p.leadership.last_leader_id = "n2"
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE, timeout_ms=10))
    router.expire(monotonic_ms() + 11)
    assert p.ipc.answers[0][3] == {"code": "no_leader", "leader_id": None, "leader_http": None}


def test_a_waiting_long_poll_does_not_hold_first_unanswered_down():
    p = Node()
    router = RequestRouter(p.links())
    client = router.table.client_id
    router.accept_command(_cmd("r1", LEASE, wait_ms=5_000))  # nothing visible: parked
    router.accept_command(_cmd("r2", {"op": "tick"}))
    assert p.sessions == [ClientSession(client, 2, 2)]
    p.apply(router, "r2", {"op": "tick"}, p.sessions[0])  # r2 answered
    p.apply(router, "r0", {"op": "enqueue", "tasks": [{"id": "t0", "type": "mail"}]})
    router.accept_command(_cmd("r3", LEASE, wait_ms=5_000))  # t0 visible: proposed
    p.apply(router, "rx", LEASE)  # another worker's lease takes t0 first
    p.apply(router, "r3", LEASE, p.sessions[1])  # so r3 applies empty and parks
    router.accept_command(_cmd("r4", {"op": "tick"}))
    assert p.sessions[1:] == [ClientSession(client, 3, 3), ClientSession(client, 4, 4)]


def test_a_forwarded_long_poll_is_sent_again_as_a_new_lease_after_its_empty_apply():
    p = Node(role=Role.FOLLOWER, leader_id="n2")
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", LEASE, wait_ms=5_000))
    first = p.transport.sent[0][2]["session"]
    p.apply(router, "r1", LEASE, ClientSession(*first))  # parked on n2, seen applied here
    assert p.ipc.answers == []
    p.leadership.leader_id = "n3"
    router.on_leader_known()
    again = p.transport.sent[1][2]["session"]
    assert again[1] > first[1] and again[2] == again[1]  # a new number, nothing below open


def test_a_refused_repeat_reaches_a_local_client_as_outcome_unknown():
    p = Node(role=Role.FOLLOWER, leader_id="n2")
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", ENQUEUE))
    router.accept_command(_cmd("r2", ENQUEUE))
    router.on_peer("n2", PeerKind.FWD_RES, {"rid": "r1", "code": "duplicate_request",
                                        "message": "below first unanswered"})
    refused = {"ok": False, "code": "duplicate_request", "message": "below first unanswered"}
    router.on_peer("n2", PeerKind.FWD_RES, {"rid": "r2", "outcome": refused})
    assert [(rid, key, answer["code"]) for _, rid, key, answer in p.ipc.answers] == [
        ("r1", "err", "timeout"), ("r2", "err", "timeout")]


def test_a_lease_without_a_wait_on_an_empty_queue_is_answered_without_a_log_entry():
    p = Node()
    router = RequestRouter(p.links())
    router.accept_command(_cmd("r1", LEASE))
    assert p.proposed == []
    assert p.ipc.answers == [(b"api", "r1", "outcome", {"ok": True, "value": {"tasks": []}})]
    assert "r1" not in router.table.pending
    p.apply(router, "r2", ENQUEUE)
    router.accept_command(_cmd("r3", LEASE))  # a task is visible: proposed as usual
    assert [rid for rid, _ in p.proposed] == ["r3"]
