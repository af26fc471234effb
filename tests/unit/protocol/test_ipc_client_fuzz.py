"""RaftClient takes any reply from the Raft process without raising anything but its own errors.

A reply of another shape than expected used to surface as a KeyError or AttributeError in the
API thread (a 500 at best); it is now ``RaftUnavailable``. Garbage frames are skipped.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dqueue.protocol import ipc_client, wire
from dqueue.protocol.ipc_client import RaftClient, RaftClientError
from tests.depth import examples
from tests.unit.msgpack_values import RAW_BODIES, VALUES, maps_with, packed
from tests.unit.protocol.test_ipc_client import ScriptedServer

KINDS = st.sampled_from([b"res", b"err", b"x"])
REPLIES = maps_with(["outcome", "value", "code", "message", "leader_id", "leader_http"])


class Script:
    """What the server answers next: raw frames (garbage first), then a reply with the rid."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kind = b"res"
        self.reply: dict[Any, Any] = {}
        self.garbage: list[list[bytes]] = []

    def __call__(self, kind: bytes, body: dict[str, Any]) -> list[list[bytes]]:
        with self.lock:
            answer = [wire.WIRE_VERSION, self.kind, packed({**self.reply, "rid": body["rid"]})]
            return [*self.garbage, answer]


def test_any_reply_returns_or_raises_a_raft_client_error(tmp_path, monkeypatch):
    # A reply of an unknown kind is skipped and the call waits out its deadline: keep it short.
    monkeypatch.setattr(ipc_client, "REPLY_GRACE_MS", 20)
    endpoint = "ipc://" + str(tmp_path / "raft.ipc")
    script = Script()
    with ScriptedServer(endpoint, script), RaftClient(endpoint) as client:

        @settings(max_examples=examples(200), deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
        @given(kind=KINDS, reply=REPLIES, garbage=st.lists(RAW_BODIES, max_size=2),
               read=st.booleans(), outcome=VALUES)
        def check(kind, reply, garbage, read, outcome):
            with script.lock:
                script.kind = kind
                script.reply = {**reply, "outcome": outcome} if not read else reply
                script.garbage = [[wire.WIRE_VERSION, b"res", raw] for raw in garbage]
                script.garbage.append([b"\x01", b"res", msgpack.packb([1, 2])])
            try:
                if read:
                    client.read({"op": "stats"}, timeout_ms=0)
                else:
                    got = client.command({"op": "tick"}, timeout_ms=0)
                    assert isinstance(got, dict) and isinstance(got["ok"], bool)
            except RaftClientError:
                pass

        check()
