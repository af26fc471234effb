"""The Raft process's IPC intake accepts any message without raising: ``IpcServer.recv`` on a
real socket, then the router (``RaftProcess._on_ipc``'s path) for whatever it lets through.

One read with mixed key types once crashed the whole Raft process (issue 13).
"""

from __future__ import annotations

import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dqueue.node.ipc_server import CmdRequest, IpcServer, ReadRequest
from dqueue.node.router import RequestRouter
from dqueue.protocol import wire
from dqueue.raft import Role
from tests.depth import examples
from tests.unit.msgpack_values import KEYS, RAW_BODIES, VALUES, maps_with, packed
from tests.unit.node.test_router import Node

OPS = st.sampled_from(["enqueue", "lease", "ack", "ack_batch", "nack", "extend", "cancel",
                       "redrive", "purge", "tick", "configure", "get", "stats", "list",
                       "health", "cluster", "metrics", "x"]) | VALUES
INNER = st.builds(lambda op, rest: {**rest, "op": op}, OPS,
                  maps_with(["tasks", "id", "worker_id", "token", "types", "max_tasks",
                             "lease_ms", "status", "limit", "cursor", "type", "items",
                             "settings", "reason"]))
BODIES = st.builds(
    lambda rid, inner, rest, key: {**rest, "rid": rid, key: inner},
    st.text(min_size=1, max_size=8) | VALUES, INNER | VALUES,
    maps_with(["timeout_ms", "wait_ms", "stale"]), st.sampled_from(["cmd", "query"]),
) | st.dictionaries(KEYS, VALUES, max_size=4) | VALUES
KINDS = st.sampled_from([b"cmd", b"read", b"res", b"\x00"])


@settings(max_examples=examples(500), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=KINDS, body=BODIES, raw=st.none() | RAW_BODIES,
       role=st.sampled_from([Role.LEADER, Role.FOLLOWER]))
def test_any_ipc_message_is_answered_or_dropped_never_raises(tmp_path, kind, body, raw, role):
    ctx = zmq.Context.instance()
    server = IpcServer(ctx, f"inproc://fuzz-{id(body)}-{id(raw)}")
    client = ctx.socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    client.connect(server.endpoint)
    try:
        client.send_multipart([wire.WIRE_VERSION, kind, packed(body) if raw is None else raw])
        assert server.socket.poll(2_000)
        request = server.recv()
        if isinstance(request, CmdRequest | ReadRequest):
            p = Node(role=role, leader_id="n1" if role is Role.LEADER else "n2")
            router = RequestRouter(p.links())
            if isinstance(request, CmdRequest):
                router.accept_command(request)
            else:
                router.accept_read(request)
            router.flush_reads()
            router.expire(1e15)
    finally:
        client.close(0)
        server.close()
