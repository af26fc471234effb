"""Issue 13 on a real node: no starvation, quotas, bad messages survived, honest bind failures.

One node (supervisor, Raft and API processes, real LMDB, loopback sockets) serves the tests
that share ``node``, in file order: starvation first (it needs an empty queue), then the
gateway, the IPC socket, then quotas. The bind-failure tests start their own nodes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from dqueue.protocol import wire
from dqueue.protocol.ipc_client import BadRequest, RaftClient
from dqueue.testing.cluster import NodeCluster, wait_http
from dqueue.testing.http import Http

pytestmark = pytest.mark.integration

POLLS = 1_000
SLOW = 1_000
HEALTH_SAMPLES = 15
HEALTH_BOUND_S = 1.0


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    root = tmp_path_factory.mktemp("edges")
    nodes = NodeCluster(root, 1, queue={"max_depth": 3}, log_format="json", start=True)
    try:
        nodes.leader()
        yield nodes
    finally:
        nodes.close()


def _addr(node: NodeCluster) -> tuple[str, int]:
    host, _, port = node.http_addr["n1"].rpartition(":")
    return host, int(port)


def _health_latencies(node: NodeCluster) -> list[float]:
    """Time ``HEALTH_SAMPLES`` fresh-connection ``GET /health`` calls (each must answer)."""
    latencies = []
    for _ in range(HEALTH_SAMPLES):
        client = Http(node.http_addr["n1"], timeout_s=10)
        started = time.perf_counter()
        try:
            status, _, _ = client.call("GET", "/health")
        finally:
            client.close()
        latencies.append(time.perf_counter() - started)
        assert status == 200
    return latencies


def _report(what: str, latencies: list[float]) -> str:
    line = (f"/health {what}: p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms over {len(latencies)}")
    print(line)
    return line


def _open(node: NodeCluster, count: int, first_bytes: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(_addr(node), timeout=10)
        sock.sendall(first_bytes)
        sockets.append(sock)
    return sockets


def test_health_answers_within_1s_under_1000_long_polls_and_1000_slow_connections(node):
    idle = _report("idle", _health_latencies(node))
    body = b'{"worker_id": "w", "wait_seconds": 20}'
    poll = (b"POST /tasks/lease HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    polls = _open(node, POLLS, poll)
    slow: list[socket.socket] = []
    stop = threading.Event()
    try:
        under_polls = _health_latencies(node)
        _report(f"with {POLLS} long polls sent", under_polls)
        # Slowly-sending clients: headers that never end, one more byte every 0.5 s.
        slow = _open(node, SLOW, b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")

        def trickle() -> None:
            while not stop.wait(0.5):
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(b"a")

        threading.Thread(target=trickle, daemon=True).start()
        under_both = _health_latencies(node)
        _report(f"with {POLLS} long polls and {SLOW} slow connections", under_both)
        # The long polls beyond the parked places were answered at once, 204 and why.
        refused = 0
        for sock in polls[-50:]:
            sock.settimeout(10)
            head = sock.recv(4096)
            refused += b"Dqueue-Wait: refused" in head
        assert refused == 50
    finally:
        stop.set()
        for sock in polls + slow:
            sock.close()
    print(idle)
    assert max(under_polls) < HEALTH_BOUND_S
    assert max(under_both) < HEALTH_BOUND_S


def _dealer(ctx: zmq.Context, endpoint: str) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def _worker_endpoint(node: NodeCluster) -> str:
    return node.zmq("n1")


def _answer(sock: zmq.Socket) -> tuple[bytes, object]:
    assert sock.poll(10_000), "no answer from the gateway"
    return wire.decode(sock.recv_multipart())


def test_the_gateway_survives_messages_that_once_killed_it(node):
    api_pid = node.api_pid("n1")
    ctx = zmq.Context()
    sock = _dealer(ctx, _worker_endpoint(node))
    try:
        bad = [
            msgpack.packb({"rid": 1, "worker_id": "w", 7: 1}),
            msgpack.packb({"rid": 2, "worker_id": "w", None: 1, b"k": 2}),
            msgpack.packb({"rid": 3, "worker_id": "w", "items": [{"id": "t", 5: 1}]}),
            msgpack.packb({"rid": 4, "worker_id": "w", "max_tasks": (1 << 64) - 1}),
            msgpack.packb({"rid": "r", "op": "AAA"}).replace(b"\xa3AAA", b"\xa3\xed\xa0\x80"),
            b"\x91" * 100_000 + b"\xc0",
        ]
        for kind in (b"lease", b"ack_many", b"ack"):
            for body in bad:
                sock.send_multipart([wire.WIRE_VERSION, kind, body])
        sock.send_multipart(wire.encode(b"ping", {"rid": "alive"}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            kind, reply = _answer(sock)
            if kind == b"pong":
                assert reply == {"rid": "alive"}
                break
        else:
            raise AssertionError("no pong")
    finally:
        sock.close(0)
        ctx.term()
    assert node.api_pid("n1") == api_pid  # the same process: nothing died


def test_parked_leases_are_capped_node_wide_and_cost_no_log_entries(node):
    ctx = zmq.Context()
    endpoint = _worker_endpoint(node)
    sockets = [_dealer(ctx, endpoint) for _ in range(16)]
    try:
        before = node.health("n1")["commit_index"]
        for index, sock in enumerate(sockets):
            for n in range(20):  # 320 waiting leases asked for, 20 per socket
                sock.send_multipart(wire.encode(b"lease", {
                    "rid": f"{index}-{n}", "worker_id": f"w{index}", "wait_ms": 15_000}))
        refused = 0
        poller = zmq.Poller()
        for sock in sockets:
            poller.register(sock, zmq.POLLIN)
        deadline = time.monotonic() + 10
        while refused < 320 - 256 and time.monotonic() < deadline:
            for sock, _ in poller.poll(500):
                kind, reply = wire.decode(sock.recv_multipart())
                assert kind == b"err" and reply["code"] == "too_many_requests", reply
                refused += 1
        assert refused == 320 - 256
        # Over 3 s (three lease slices of each of the 256 parked leases, which once proposed
        # an empty lease each per slice) the log does not grow by them.
        window_end = time.monotonic() + 3
        after = before
        while time.monotonic() < window_end:
            after = node.health("n1")["commit_index"]
            assert after - before < 10, f"{after - before} entries with leases parked"
        print(f"commit index grew by {after - before} in 3 s with 256 parked leases")
    finally:
        for sock in sockets:
            sock.close(0)
        ctx.term()


def test_a_malformed_ipc_read_is_refused_and_the_raft_process_lives(node):
    endpoint = "ipc://" + str(Path(node.root) / "n1" / "raft.ipc")
    with RaftClient(endpoint) as client:
        with pytest.raises(BadRequest):
            client.read({"op": "stats", 5: 1, "z": 2}, timeout_ms=2_000)
        assert client.read({"op": "health"}, timeout_ms=2_000)["leader_id"] == "n1"


def test_max_depth_answers_429_and_a_reused_key_409(node):
    http = Http(node.http_addr["n1"])
    try:
        status, _, first = http.call("POST", "/tasks", {"type": "x", "payload": 1,
                                                        "idempotency_key": "k"})
        assert status == 201
        status, _, again = http.call("POST", "/tasks", {"type": "x", "payload": 1,
                                                        "idempotency_key": "k"})
        assert (status, again["id"], again["duplicate"]) == (200, first["id"], True)
        status, _, reused = http.call("POST", "/tasks", {"type": "x", "payload": 2,
                                                         "idempotency_key": "k"})
        assert status == 409
        assert reused["error"]["code"] == "idempotency_key_reused"
        assert reused["error"]["task_id"] == first["id"]
        status, _, _ = http.call("POST", "/tasks/batch", {"tasks": [{"type": "x"}] * 2})
        assert status == 201  # 3 tasks now: max_depth
        status, headers, full = http.call("POST", "/tasks/batch", {"tasks": [{"type": "x"}]})
        assert status == 429 and full["error"]["code"] == "queue_full"
        assert headers["retry-after"] == "1"
        status, _, _ = http.call("POST", "/tasks", {"type": "x", "payload": 1,
                                                    "idempotency_key": "k"})
        assert status == 200  # a duplicate is answered even when full
    finally:
        http.close()


def _hold(port: int) -> socket.socket:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    return holder


@pytest.mark.parametrize("role", ["HTTP", "worker", "raft"])
def test_a_port_in_use_fails_the_start_with_status_1_naming_it(tmp_path, role):
    nodes = NodeCluster(tmp_path, 1, log_format="json")
    addr = {"HTTP": nodes.http_addr, "worker": nodes.worker_addr,
            "raft": nodes.raft_addr}[role]["n1"]
    port = int(addr.rpartition(":")[2])
    holder = _hold(port)
    try:
        nodes.start("n1")
        proc = nodes.procs["n1"]
        wait_http(lambda: proc.poll() is not None, "the node to exit", 60)
        assert proc.returncode == 1
        log = (tmp_path / "n1.log").read_text()
        assert f"cannot bind the {role} address {addr}" in log, log[-2000:]
        assert f"held by pid {os.getpid()}" in log
        if role != "raft":
            assert log.count('"process_started"') == 2  # no restart of the API process
    finally:
        holder.close()
        nodes.close()
