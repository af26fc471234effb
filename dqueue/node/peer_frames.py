"""The checks a Raft frame from a peer passes before the core sees it.

The transport already knows which member the connection belongs to (with keys: the member
whose key the ZAP handler admitted); the body must decode as a Raft message
(``message_from_plain``, strict), name that same member as its sender, and be addressed to
this node. Anything else is dropped and counted, never raised.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from dqueue.raft import Message, message_from_plain


class Refused(Enum):
    """Why a Raft frame was dropped."""

    MALFORMED = "malformed"  # not a Raft message, or addressed to another node
    FORGED = "forged_sender"  # the body claims another member than its connection's


def raft_message(body: Any, sender: str, node_id: str) -> Message | Refused:
    """The Raft message ``body`` carries from ``sender`` to ``node_id``, or why it is refused."""
    try:
        msg = message_from_plain(body)
    except ValueError:
        return Refused.MALFORMED
    if msg.sender != sender:
        return Refused.FORGED
    if msg.to != node_id:
        return Refused.MALFORMED
    return msg
