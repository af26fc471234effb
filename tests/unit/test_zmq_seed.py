"""libzmq's ROUTER aborts on a predicted routing id; seeding libc's rand() takes the guess away.

Each case runs in a child process: the abort kills the whole process, and an unseeded ``rand()``
is only predictable in a fresh one.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

import pytest

import dqueue.api.__main__ as api_main
import dqueue.node.__main__ as node_main
from dqueue.zmq_seed import seed_libc_random

CHILD_TIMEOUT_S = 60

# The first routing id a fresh process's first ROUTER gives a peer without an id: the attacker
# learns it by running the same libzmq on their own machine.
PROBE = """
import zmq
import dqueue.zmq_seed  # the same imports as the victim, so the same calls to rand() before
ctx = zmq.Context()
router = ctx.socket(zmq.ROUTER)
router.setsockopt(zmq.RCVTIMEO, 20_000)
port = router.bind_to_random_port("tcp://127.0.0.1")
dealer = ctx.socket(zmq.DEALER)
dealer.connect(f"tcp://127.0.0.1:{port}")
dealer.send(b"hello")
routing_id, _ = router.recv_multipart()
print(routing_id.hex(), flush=True)
"""

# A ROUTER (seeded first when argv[2] is "seed"); a peer connects with the predicted id
# (argv[1]), then an honest peer without an id. Prints the honest peer's id when it survives.
VICTIM = """
import sys
import zmq
from dqueue.zmq_seed import seed_libc_random
if sys.argv[2] == "seed":
    assert seed_libc_random()
ctx = zmq.Context()
router = ctx.socket(zmq.ROUTER)
router.setsockopt(zmq.RCVTIMEO, 20_000)
port = router.bind_to_random_port("tcp://127.0.0.1")
attacker = ctx.socket(zmq.DEALER)
attacker.setsockopt(zmq.ROUTING_ID, bytes.fromhex(sys.argv[1]))
attacker.connect(f"tcp://127.0.0.1:{port}")
attacker.send(b"first")
assert router.recv_multipart() == [bytes.fromhex(sys.argv[1]), b"first"]
honest = ctx.socket(zmq.DEALER)
honest.connect(f"tcp://127.0.0.1:{port}")
honest.send(b"second")
routing_id, body = router.recv_multipart()
assert body == b"second"
print(routing_id.hex(), flush=True)
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S)


def test_a_predicted_routing_id_aborts_an_unseeded_process_and_not_a_seeded_one():
    first, second = _run(PROBE), _run(PROBE)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    predicted = first.stdout.strip()
    # Unseeded, every fresh process hands out the same first id (glibc: 006b8b4567).
    assert second.stdout.strip() == predicted
    assert len(bytes.fromhex(predicted)) == 5 and predicted.startswith("00")

    # The control: without the seed, the honest peer's connection aborts the process.
    unseeded = _run(VICTIM, predicted, "plain")
    assert unseeded.returncode == -signal.SIGABRT, (unseeded.returncode, unseeded.stderr)
    assert "Assertion failed" in unseeded.stderr

    seeded = _run(VICTIM, predicted, "seed")
    assert seeded.returncode == 0, (seeded.returncode, seeded.stderr)
    honest_id = seeded.stdout.strip()
    assert len(bytes.fromhex(honest_id)) == 5 and honest_id != predicted


def test_seeding_finds_libc_srand():
    assert seed_libc_random() is True


@pytest.mark.parametrize("entry", [api_main, node_main], ids=["api", "raft"])
def test_both_process_entry_points_seed_before_reading_their_configuration(entry, monkeypatch):
    """Seeded first: every ROUTER of the process is made from the configuration, later."""
    calls: list[str] = []

    def seed() -> bool:
        calls.append("seed")
        return True

    def from_json(text: str) -> None:
        calls.append("config")
        raise ValueError("stop here")

    monkeypatch.setattr(entry, "seed_libc_random", seed)
    monkeypatch.setattr(entry.NodeConfig, "from_json", from_json)
    # The API process does not catch a bad --config-json (the supervisor made it).
    with contextlib.suppress(ValueError):
        entry.main(["--config-json", "{}"])
    assert calls == ["seed", "config"]
