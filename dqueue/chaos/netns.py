"""Network namespaces that make partitions real: one namespace per node, joined by a bridge.

Layout for a topology with prefix ``P``: a hub namespace ``P-hub`` holds a bridge ``br0`` (with
the hub address, from which the harness talks to the nodes) and one veth end ``v-<node>`` per
node; the other end is ``eth0`` in the node's namespace ``P-<node>``, with the node's address.
Every address lives only inside these namespaces, so no traffic can leave them.

Two ways to cut a node off, both reversible:

- ``isolate``: the node's veth end in the hub goes down; peers and clients lose it at once,
  packets in flight vanish, no error is returned to anyone (a cable pulled out);
- ``cut_peers``: blackhole routes between the node and its peers only; clients still reach the
  node (a split between the Raft peers, the case where a deposed leader still gets requests).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/var/run/netns"


class NetnsError(RuntimeError):
    """A namespace command failed; the message says which and why."""


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None when they can (root and ``ip`` needed)."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, or in a VM)"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = f"dqprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"'ip netns add' failed: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Topology:
    """Names and addresses of one set of namespaces. ``addresses`` maps node id to IPv4."""

    prefix: str
    addresses: dict[str, str]
    hub_address: str
    prefix_len: int = 24

    @property
    def hub(self) -> str:
        """Name of the hub namespace."""
        return f"{self.prefix}-hub"

    def namespace(self, node: str) -> str:
        """Name of a node's namespace."""
        return f"{self.prefix}-{node}"

    def veth(self, node: str) -> str:
        """Name of the node's veth end in the hub (at most 15 bytes)."""
        return f"v-{node}"[:15]

    def exec_prefix(self, node: str) -> list[str]:
        """Argv prefix that runs a command inside the node's namespace."""
        return ["ip", "netns", "exec", self.namespace(node)]

    def to_json(self) -> str:
        """Serialize, for ``python -m dqueue.chaos.netns`` subcommands."""
        return json.dumps({"prefix": self.prefix, "addresses": self.addresses,
                           "hub_address": self.hub_address, "prefix_len": self.prefix_len})

    @classmethod
    def from_json(cls, text: str) -> Topology:
        """Inverse of ``to_json``."""
        raw = json.loads(text)
        return cls(raw["prefix"], dict(raw["addresses"]), raw["hub_address"],
                   int(raw["prefix_len"]))


def subnet_topology(prefix: str, nodes: list[str], subnet: str = "10.77.0") -> Topology:
    """Nodes at ``subnet.1``, ``subnet.2``, ..., the hub at ``subnet.254``."""
    return Topology(prefix, {node: f"{subnet}.{i + 1}" for i, node in enumerate(nodes)},
                    f"{subnet}.254")


def create(topo: Topology) -> None:
    """Create the hub, the bridge and one namespace per node; undone by ``destroy``."""
    if len(topo.prefix) > 20 or not topo.prefix.replace("-", "").isalnum():
        raise NetnsError(f"bad namespace prefix {topo.prefix!r}")
    try:
        _ip("netns", "add", topo.hub)
        _ip("-n", topo.hub, "link", "set", "lo", "up")
        _ip("-n", topo.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", topo.hub, "addr", "add", f"{topo.hub_address}/{topo.prefix_len}", "dev", "br0")
        _ip("-n", topo.hub, "link", "set", "br0", "up")
        for node, address in topo.addresses.items():
            ns = topo.namespace(node)
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", topo.hub, "link", "add", topo.veth(node), "type", "veth",
                "peer", "name", "eth0", "netns", ns)
            _ip("-n", topo.hub, "link", "set", topo.veth(node), "master", "br0")
            _ip("-n", topo.hub, "link", "set", topo.veth(node), "up")
            _ip("-n", ns, "addr", "add", f"{address}/{topo.prefix_len}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
    except NetnsError:
        destroy(topo)
        raise


def namespaces(topo: Topology) -> list[str]:
    """The namespaces of this topology that exist now."""
    try:
        present = set(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []
    wanted = [topo.hub, *(topo.namespace(n) for n in topo.addresses)]
    return [ns for ns in wanted if ns in present]


def destroy(topo: Topology) -> None:
    """Kill what still runs inside the node namespaces (by PID), then delete every namespace."""
    for ns in namespaces(topo):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in pids.stdout.split():
            if pid.isdigit() and int(pid) != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def isolate(topo: Topology, node: str) -> None:
    """Cut the node off from everyone: its veth end in the hub goes down."""
    _ip("-n", topo.hub, "link", "set", topo.veth(node), "down")


def cut_peers(topo: Topology, node: str) -> None:
    """Cut the node off from its peers only, both ways; clients in the hub still reach it."""
    for other, address in topo.addresses.items():
        if other != node:
            _ip("-n", topo.namespace(node), "route", "replace", "blackhole", f"{address}/32")
            _ip("-n", topo.namespace(other), "route", "replace", "blackhole",
                f"{topo.addresses[node]}/32")


def heal(topo: Topology, node: str | None = None) -> None:
    """Undo ``isolate`` and ``cut_peers`` for one node, or for all when node is None."""
    nodes = [node] if node else list(topo.addresses)
    for name in nodes:
        _ip("-n", topo.hub, "link", "set", topo.veth(name), "up")
    for name in topo.addresses:
        ns = topo.namespace(name)
        routes = subprocess.run(["ip", "-n", ns, "route", "show", "type", "blackhole"],
                                capture_output=True, text=True).stdout.split("\n")
        for line in routes:
            parts = line.split()
            if len(parts) < 2:
                continue
            target = parts[1].split("/")[0]
            if node is None or name == node or target == topo.addresses[node]:
                _ip("-n", ns, "route", "del", "blackhole", parts[1])


def enter(namespace: str) -> None:
    """Move the calling thread into a namespace; call it before starting any other thread.

    Threads and processes started afterwards inherit it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join(NETNS_RUN_DIR, namespace), os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise NetnsError(f"setns {namespace}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """``scripts/netns.sh``: check, create, cut, heal and destroy namespaces by hand."""
    parser = argparse.ArgumentParser(prog="netns", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="say whether namespaces can be created here")
    up = sub.add_parser("up", help="create a topology and print it as JSON")
    up.add_argument("prefix")
    up.add_argument("nodes", nargs="+")
    up.add_argument("--subnet", default="10.77.0")
    for name in ("down", "isolate", "cut-peers", "heal"):
        cmd = sub.add_parser(name)
        cmd.add_argument("prefix")
        cmd.add_argument("nodes", nargs="+")
        cmd.add_argument("--subnet", default="10.77.0")
    args = parser.parse_args(argv)
    if args.cmd == "check":
        reason = unavailable_reason()
        print(reason or "network namespaces: available")
        return 1 if reason else 0
    topo = subnet_topology(args.prefix, list(dict.fromkeys(args.nodes)), args.subnet)
    try:
        if args.cmd == "up":
            create(topo)
            print(topo.to_json())
        elif args.cmd == "down":
            destroy(topo)
        elif args.cmd == "heal":
            heal(topo)
        else:
            target = args.nodes[0]
            (isolate if args.cmd == "isolate" else cut_peers)(topo, target)
    except NetnsError as exc:
        print(f"netns: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
