"""raft_message (dqueue/node/peer_frames.py): a peer's Raft frame is used only when it decodes,
names its connection's member as sender and is addressed to this node; else it is refused."""

from __future__ import annotations

import pytest

from dqueue.node.peer_frames import Refused, raft_message
from dqueue.raft import Message, MessageType, message_to_plain

HEARTBEAT = message_to_plain(Message(MessageType.HEARTBEAT, "n1", "n2", 3, commit=4))


def test_a_members_message_to_us_is_used():
    msg = raft_message(HEARTBEAT, "n2", "n1")
    assert isinstance(msg, Message) and msg.sender == "n2" and msg.commit == 4


def test_a_body_naming_another_member_than_its_connection_is_forged():
    assert raft_message(HEARTBEAT, "n3", "n1") is Refused.FORGED


@pytest.mark.parametrize(("body", "node_id"), [
    (HEARTBEAT, "n9"), (None, "n1"), ([], "n1"), ({"x": 1}, "n1"), (b"\x00", "n1"),
    (HEARTBEAT[:-1], "n1")])
def test_anything_else_is_malformed(body, node_id):
    assert raft_message(body, "n2", node_id) is Refused.MALFORMED
