"""MemberAdmin's forwarding (dqueue/node/member_admin.py): a follower forwards a member command
to the leader and relays its answer; a peer's message of any shape is taken without raising."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.node.ipc_server import CmdRequest
from dqueue.node.member_admin import MemberAdmin
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.kinds import PeerKind
from dqueue.raft import Raft, RaftConfig
from tests.depth import examples
from tests.unit.plain_values import PLAIN


class Replier:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send_res(self, identity: bytes, rid: str, key: str, value: Any) -> None:
        self.sent.append(("res", rid, value))

    def send_err(self, identity: bytes, rid: str, code: str, message: str,
                 leader_id: str | None = None, leader_http: str | None = None) -> None:
        self.sent.append(("err", rid, code, leader_id, leader_http))


def _admin(leader: str | None) -> tuple[MemberAdmin, Replier, list[tuple[str, bytes, Any]]]:
    raft = Raft(RaftConfig(id="n2", members=("n1", "n2", "n3")), random.Random(1))
    raft.leader_id = leader  # a follower that heard of a leader (or not)
    replier, peers = Replier(), []

    def send(peer: str, kind: bytes, body: Any) -> bool:
        peers.append((peer, kind, body))
        return True

    admin = MemberAdmin(raft, replier, send, lambda m: f"{m}:8080" if m else None,  # type: ignore[arg-type]
                        secure=False)
    return admin, replier, peers


CMD = {"op": "member_promote", "id": "n4"}


def test_a_follower_forwards_and_relays_the_leaders_outcome():
    admin, replier, peers = _admin("n1")
    admin.accept(CmdRequest(b"api", "r1", CMD, 5_000, 0))
    assert peers == [("n1", PeerKind.FWD, {"rid": "r1", "cmd": CMD, "timeout_ms": 5_000,
                                           "wait_ms": 0})]
    outcome = {"ok": True, "value": {"voters": ["n1", "n4"]}}
    assert admin.on_peer("n1", PeerKind.FWD_RES, {"rid": "r1", "outcome": outcome})
    assert replier.sent == [("res", "r1", outcome)]
    # Answered once: a late repeat is not this module's any more.
    assert not admin.on_peer("n1", PeerKind.FWD_RES, {"rid": "r1", "outcome": outcome})


def test_a_leaders_refusal_is_relayed_with_its_hint_and_a_lost_answer_times_out():
    admin, replier, _ = _admin("n1")
    admin.accept(CmdRequest(b"api", "r1", CMD, 5_000, 0))
    admin.on_peer("n1", PeerKind.FWD_RES, {"rid": "r1", "code": ErrorCode.NO_LEADER,
                                           "message": "handed over", "leader_id": "n3"})
    assert replier.sent == [("err", "r1", ErrorCode.NO_LEADER, "n3", "n3:8080")]
    admin.accept(CmdRequest(b"api", "r2", CMD, 5_000, 0))
    admin.expire(float("inf"))
    assert replier.sent[-1][:3] == ("err", "r2", ErrorCode.TIMEOUT)


def test_a_new_leader_answers_what_was_forwarded_to_the_old_one_at_once():
    admin, replier, _ = _admin("n1")
    admin.accept(CmdRequest(b"api", "r1", CMD, 5_000, 0))
    admin.on_leader_known("n1")
    assert replier.sent == []  # the same leader: still waiting for its answer
    admin.on_leader_known("n3")
    assert replier.sent == [("err", "r1", ErrorCode.NO_LEADER, "n3", "n3:8080")]


def test_a_forwarded_command_is_never_forwarded_again():
    admin, _, peers = _admin("n1")
    assert admin.on_peer("n3", PeerKind.FWD, {"rid": "x", "cmd": CMD, "timeout_ms": 100})
    assert peers == [("n3", PeerKind.FWD_RES, {
        "rid": "x", "code": ErrorCode.NO_LEADER, "message": "this node does not lead: ask the "
        "leader", "leader_id": "n1"})]


def test_without_a_leader_the_api_hears_no_leader():
    admin, replier, peers = _admin(None)
    admin.accept(CmdRequest(b"api", "r1", CMD, 5_000, 0))
    assert peers == [] and replier.sent == [("err", "r1", ErrorCode.NO_LEADER, None, None)]


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from([PeerKind.FWD, PeerKind.FWD_RES, PeerKind.RAFT]),
       st.one_of(PLAIN, st.fixed_dictionaries({"rid": st.sampled_from(["r1", "zz"])},
                                              optional={"cmd": PLAIN, "timeout_ms": PLAIN,
                                                        "outcome": PLAIN, "code": PLAIN,
                                                        "message": PLAIN,
                                                        "leader_id": PLAIN})))
def test_any_peer_message_is_taken_or_declined_without_raising(kind, body):
    admin, _, _ = _admin("n1")
    admin.accept(CmdRequest(b"api", "r1", CMD, 5_000, 0))
    assert admin.on_peer("n1", kind, body) in (True, False)
