"""The namespace harness: real namespaces, a real bridge, real cuts and heals."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dqueue.chaos import netns
from dqueue.testing import wait_until

pytestmark = pytest.mark.integration

NODES = ["n1", "n2", "n3"]
PORT = 8080
# A one-line TCP server that answers every connection with its node id.
SERVER = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,"
          "socket.SO_REUSEADDR,1);s.bind((sys.argv[1],int(sys.argv[2])));s.listen()\n"
          "while True:\n c,_=s.accept();c.sendall(sys.argv[3].encode());c.close()")
PROBE = ("import socket,sys\ntry:\n c=socket.create_connection((sys.argv[1],int(sys.argv[2])),"
         "timeout=0.5);print(c.recv(16).decode())\n"
         "except OSError as e:print('ERR',type(e).__name__)")


@pytest.fixture
def topology() -> Iterator[netns.Topology]:
    reason = netns.unavailable_reason()
    if reason:
        pytest.fail(f"network namespaces are required for partition tests: {reason}")
    topo = netns.subnet_topology(f"dqt{secrets.token_hex(3)}", NODES)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        netns.create(topo)
        for node, address in topo.addresses.items():
            servers.append(subprocess.Popen(
                [*topo.exec_prefix(node), sys.executable, "-c", SERVER, address, str(PORT), node]))
        yield topo
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=10)
        netns.destroy(topo)
        assert netns.namespaces(topo) == []


def probe(topo: netns.Topology, source: str | None, target: str) -> str:
    """Connect from the hub (source None) or a node's namespace to the target node."""
    ns = topo.hub if source is None else topo.namespace(source)
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE,
                           topo.addresses[target], str(PORT)],
                          capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def probe_until(topo: netns.Topology, source: str | None, target: str, want: str) -> str:
    """Probe until the answer starts with ``want`` or 20 s pass; return the last answer."""
    answers: list[str] = []

    def matched() -> bool:
        answers.append(probe(topo, source, target))
        return answers[-1].startswith(want)

    wait_until(matched, 20.0, 0.05)
    return answers[-1]


def test_everyone_reaches_everyone_until_a_node_is_isolated(topology):
    for node in NODES:
        assert probe_until(topology, None, node, node) == node
    assert probe_until(topology, "n1", "n2", "n2") == "n2"

    netns.isolate(topology, "n2")
    assert probe(topology, None, "n2").startswith("ERR")
    assert probe(topology, "n1", "n2").startswith("ERR")
    assert probe(topology, "n1", "n3") == "n3"

    netns.heal(topology, "n2")
    assert probe_until(topology, None, "n2", "n2") == "n2"
    assert probe_until(topology, "n3", "n2", "n2") == "n2"


def test_cut_peers_keeps_clients_but_splits_the_peers(topology):
    assert probe_until(topology, None, "n1", "n1") == "n1"
    netns.cut_peers(topology, "n1")
    assert probe(topology, None, "n1") == "n1"
    assert probe(topology, "n2", "n1").startswith("ERR")
    assert probe(topology, "n1", "n3").startswith("ERR")
    assert probe(topology, "n2", "n3") == "n3"

    netns.heal(topology)
    assert probe_until(topology, "n2", "n1", "n1") == "n1"
    assert probe_until(topology, "n1", "n3", "n3") == "n3"


def test_addresses_exist_only_inside_the_namespaces(topology):
    root = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    for address in (*topology.addresses.values(), topology.hub_address):
        assert f"{address}/" not in root
    inside = subprocess.run(["ip", "-n", topology.namespace("n1"), "-4", "addr"],
                            capture_output=True, text=True).stdout
    assert f"{topology.addresses['n1']}/24" in inside
