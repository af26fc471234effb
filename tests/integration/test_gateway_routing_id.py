"""The real API process's worker gateway against predicted ROUTER routing ids (libzmq 4.3.5
aborts on a collision; ``dqueue/zmq_seed.py``, docs/security.md "Known limitations").

An attacker computes the routing ids a fresh, unseeded process's ROUTERs hand out (libc's
``rand()`` sequence is the same in every process), connects one worker socket claiming each,
then one without an id, which takes the ROUTER's next generated id. The API process started as
the supervisor starts it survives that; the same process with the seed disabled dies of
SIGABRT (the control: it shows the attack reaches the gateway, so that the seeded process's
survival means something).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from dqueue.config import NodeConfig
from dqueue.testing import free_port
from dqueue.testing.cluster import wait_http

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# rand() values covered: the gateway's ROUTER is not the process's first (its ZAP handler's
# ROUTER comes before it), and each ROUTER draws two.
RAND_CALLS_COVERED = 64
REPLY_TIMEOUT_MS = 10_000
# The API process with seeding turned off, everything else as ``python -m dqueue.api``.
UNSEEDED_API = """
import runpy, sys
import dqueue.zmq_seed
dqueue.zmq_seed.seed_libc_random = lambda: True
sys.argv = ["dqueue.api", *sys.argv[1:]]
runpy.run_module("dqueue.api", run_name="__main__")
"""
# The first rand() values of a fresh process, as the attacker computes them on their own machine.
FIRST_RANDS = f"""
import ctypes
libc = ctypes.CDLL(None)
print(" ".join(str(libc.rand()) for _ in range({RAND_CALLS_COVERED + 1})))
"""


def predicted_ids() -> list[bytes]:
    """Every counter start libzmq's generate_random() (``rand() | rand() << 31``) could give
    from the first rand() values of a fresh process: b"\\x00" + the counter, big-endian."""
    out = subprocess.run([sys.executable, "-c", FIRST_RANDS], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    rands = [int(v) for v in out.split()]
    starts = {(low | (high << 31)) & 0xFFFFFFFF for low, high in itertools.pairwise(rands)}
    return [b"\x00" + start.to_bytes(4, "big") for start in sorted(starts)]


def ping(ctx: zmq.Context, endpoint: str, routing_id: bytes | None) -> zmq.Socket:
    """A worker socket that pinged the gateway and got its pong (so the ROUTER has named it)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, REPLY_TIMEOUT_MS)
    if routing_id is not None:
        sock.setsockopt(zmq.ROUTING_ID, routing_id)
    sock.connect(endpoint)
    sock.send_multipart([b"\x01", b"ping", msgpack.packb({"rid": 1})])
    frames = sock.recv_multipart()
    assert frames[1] == b"pong", frames
    return sock


class ApiProcess:
    """One API process on free loopback ports (no Raft process: the gateway answers pings
    itself), stopped by PID."""

    def __init__(self, root: Path, command: list[str]) -> None:
        self.worker_addr = f"127.0.0.1:{free_port()}"
        config = NodeConfig(id="n1", data_dir=str(root / "data"),
                            http_addr=f"127.0.0.1:{free_port()}", worker_addr=self.worker_addr)
        self.log_path = root / "api.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*command, "--config-json", config.to_json()], stdout=log,
                stderr=subprocess.STDOUT, cwd=root,
                env={**os.environ, "PYTHONPATH": str(REPO)})

    @property
    def endpoint(self) -> str:
        return "tcp://" + self.worker_addr

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self) -> None:
        def started() -> bool:
            assert self.proc.poll() is None, self.log()
            return any(json.loads(line).get("event") == "api_started"
                       for line in self.log().splitlines() if line.startswith("{"))
        wait_http(started, "the API process started")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def attack(ctx: zmq.Context, api: ApiProcess, ids: list[bytes]) -> list[zmq.Socket]:
    """Claim every predicted id, then connect a worker without one."""
    api.wait_started()
    held = [ping(ctx, api.endpoint, routing_id) for routing_id in ids]
    honest = ctx.socket(zmq.DEALER)
    honest.setsockopt(zmq.LINGER, 0)
    honest.setsockopt(zmq.RCVTIMEO, REPLY_TIMEOUT_MS)
    honest.connect(api.endpoint)
    honest.send_multipart([b"\x01", b"ping", msgpack.packb({"rid": 2})])
    return [*held, honest]


def test_predicted_routing_ids_abort_an_unseeded_gateway_but_not_the_api_process(tmp_path, ctx):
    ids = predicted_ids()
    assert len(ids) >= RAND_CALLS_COVERED // 2

    (tmp_path / "unseeded").mkdir()
    control = ApiProcess(tmp_path / "unseeded", [sys.executable, "-c", UNSEEDED_API])
    try:
        sockets = attack(ctx, control, ids)  # held open: a closed socket frees its id
        wait_http(lambda: control.proc.poll() is not None, "the unseeded API process to die")
        assert control.proc.returncode == -signal.SIGABRT, control.log()
        assert "Assertion failed" in control.log()
        for sock in sockets:
            sock.close()
    finally:
        control.stop()

    (tmp_path / "seeded").mkdir()
    api = ApiProcess(tmp_path / "seeded", [sys.executable, "-m", "dqueue.api"])
    try:
        sockets = attack(ctx, api, ids)
        frames = sockets[-1].recv_multipart()  # the honest worker is answered
        assert frames[1] == b"pong", frames
        # And the gateway still serves: a later worker too, from the same process.
        ping(ctx, api.endpoint, None)
        assert api.proc.poll() is None, api.log()
    finally:
        api.stop()
