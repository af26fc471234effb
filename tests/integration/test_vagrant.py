"""The Vagrant provisioning without VMs: provision into temporary roots, then run the three
rendered node configs with the systemd unit's command line in network namespaces that carry
the VMs' private addresses, and check that the cluster elects a leader and serves the API."""

from __future__ import annotations

import configparser
import os
import re
import secrets
import shlex
import shutil
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.chaos import netns
from dqueue.client import Client, RetryPolicy
from dqueue.client.cluster_admin import ClusterAdmin
from dqueue.client.errors import DQueueError
from dqueue.keys import create_cluster_keys, public_key_arg
from dqueue.testing import wait_for
from dqueue.testing.processes import NodeProcess, NodeSpec, health, http_json
from dqueue.tokens import ROLES, TOKENS_FILE, add_token

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VAGRANT = ROOT / "vagrant"


def _vagrant_table(name: str) -> dict[str, str]:
    text = (VAGRANT / "Vagrantfile").read_text()
    block = re.search(rf"^{name} = \{{(.*?)^\}}\.freeze", text, re.S | re.M)
    assert block is not None, f"no {name} table in the Vagrantfile"
    return dict(re.findall(r'"(n\d+)" => "(\d+\.\d+\.\d+\.\d+)"', block.group(1)))


def vagrant_addresses() -> dict[str, str]:
    """The node -> private address table of the Vagrantfile's bootstrap members."""
    return _vagrant_table("NODES")


def vagrant_joiners() -> dict[str, str]:
    """The members the Vagrantfile starts only when asked, to join the running cluster."""
    return _vagrant_table("JOINERS")


def exec_start(unit: Path) -> list[str]:
    """The ExecStart command line of a systemd unit file."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    return shlex.split(parser["Service"]["ExecStart"])


def in_namespace(namespace: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a thread that entered ``namespace`` (setns is per thread)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            netns.enter(namespace)
            result["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One temporary root per VM, provisioned by vagrant/provision.sh without systemd."""
    addresses = vagrant_addresses()
    table = ",".join(f"{node}={ip}" for node, ip in addresses.items())
    # The keys the Vagrantfile makes on the host (dqueue-cli keys init vagrant/keys ...).
    keys = tmp_path_factory.mktemp("keys")
    joiners = vagrant_joiners()
    create_cluster_keys(str(keys), [*addresses, *joiners], force=True)
    # One HTTP token, copied to every node (dqueue-cli tokens add ... --secure-dir keys/n1):
    # the test talks to the nodes from another namespace, which protected mode would refuse.
    token, _ = add_token(str(keys / "n1"), "vagrant-test", frozenset(ROLES))
    for node in [*addresses, *joiners]:
        if node != "n1":
            shutil.copyfile(keys / "n1" / TOKENS_FILE, keys / node / TOKENS_FILE)
    roots: dict[str, Path] = {}
    for node in [*addresses, *joiners]:
        root = tmp_path_factory.mktemp(f"vm-{node}")
        if roots:
            # The install step is the same on every VM: it runs once, for the first one, and
            # the others find it done (the provisioner skips an install of the same source).
            (root / "opt" / "dqueue").mkdir(parents=True)
            first = next(iter(roots.values()))
            (root / "opt" / "dqueue" / "venv").symlink_to(first / "opt" / "dqueue" / "venv")
        done = subprocess.run(
            ["bash", str(VAGRANT / "provision.sh"), "--src", str(ROOT), "--root", str(root),
             *(["--addresses", f"{node}={joiners[node]}", "--join",
                f"http://{addresses['n1']}:8080"] if node in joiners
               else ["--addresses", table]), "--keys", str(keys / node), node],
            capture_output=True, text=True, timeout=900,
            env={**os.environ, "PIP_NO_COMPILE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        assert done.returncode == 0, done.stdout + done.stderr
        roots[node] = root
    (roots["n1"] / "test-token").write_text(token)
    return roots


def _bootstrap(provisioned: dict[str, Path]) -> dict[str, Path]:
    return {n: root for n, root in provisioned.items() if n in vagrant_addresses()}


def test_provisioning_writes_venv_config_and_unit(provisioned):
    addresses = vagrant_addresses()
    assert list(addresses) == ["n1", "n2", "n3"]
    for node, root in _bootstrap(provisioned).items():
        conf = tomllib.loads((root / "etc" / "dqueue" / "node.toml").read_text())
        assert conf["id"] == node and "join" not in conf
        assert conf["data_dir"] == "/var/lib/dqueue"
        assert conf["raft_addr"] == f"{addresses[node]}:9090"
        assert conf["peers"] == {n: f"{ip}:9090" for n, ip in addresses.items()}
        assert conf["peers_http"] == {n: f"{ip}:8080" for n, ip in addresses.items()}
        # Secured: the node's own key pair and every member's public key, owner-only.
        assert conf["secure_dir"] == "/etc/dqueue/keys" and "insecure" not in conf
        keys = root / "etc" / "dqueue" / "keys"
        assert (keys.stat().st_mode & 0o777, (keys / f"{node}.key_secret").stat().st_mode
                & 0o777) == (0o700, 0o600)
        assert sorted(p.name for p in (keys / "members").iterdir()) == [
            f"{n}.key" for n in [*addresses, *vagrant_joiners()]]
        assert [p.name for p in keys.glob("*.key_secret")] == [f"{node}.key_secret"]
        assert (keys / TOKENS_FILE).stat().st_mode & 0o777 == 0o600  # HTTP tokens installed
        unit = root / "etc" / "systemd" / "system" / "dqueue.service"
        assert unit.read_text() == (VAGRANT / "dqueue.service").read_text()
        assert (root / "var" / "lib" / "dqueue").is_dir()
    # The fourth VM joins: its peers are itself alone, and it names the member to ask.
    for node, ip in vagrant_joiners().items():
        conf = tomllib.loads((provisioned[node] / "etc" / "dqueue" / "node.toml").read_text())
        assert conf["join"] == f"http://{addresses['n1']}:8080" and "bootstrap" not in conf
        assert conf["peers"] == {node: f"{ip}:9090"}
        assert conf["raft_addr"] == f"{ip}:9090"
    venv_python = provisioned["n1"] / "opt" / "dqueue" / "venv" / "bin" / "python"
    check = subprocess.run([str(venv_python), "-c", "import dqueue.supervisor, zmq, lmdb, falcon"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_unit_restarts_on_failure_and_runs_the_venv_command():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(VAGRANT / "dqueue.service")
    assert parser["Service"]["Restart"] == "on-failure"
    assert parser["Service"]["User"] == "dqueue"
    assert exec_start(VAGRANT / "dqueue.service")[:2] == [
        "/opt/dqueue/venv/bin/dqueue", "--config=/etc/dqueue/node.toml"]


def _run_vms(provisioned: dict[str, Path], addresses: dict[str, str]
             ) -> Iterator[tuple[netns.Topology, list[NodeProcess]]]:
    """The rendered configs of the VMs of ``addresses``, run with the unit's ExecStart in
    namespaces with the VMs' addresses; every path of the command is taken inside the VM's
    temporary root."""
    reason = netns.unavailable_reason()
    if reason:
        pytest.fail(f"network namespaces are required: {reason}")
    subnet = next(iter(addresses.values())).rsplit(".", 1)[0]
    topo = netns.Topology(f"dqv{secrets.token_hex(3)}", addresses, f"{subnet}.254")
    nodes: list[NodeProcess] = []
    try:
        netns.create(topo)
        for node in addresses:
            root = provisioned[node]
            argv = []
            for arg in exec_start(VAGRANT / "dqueue.service"):
                name, sep, value = arg.partition("=")
                if arg.startswith("/"):
                    arg = str(root) + arg
                elif sep and value.startswith("/"):
                    arg = f"{name}={root}{value}"
                argv.append(arg)
            argv.append(f"--data-dir={root / 'var' / 'lib' / 'dqueue'}")
            argv.append(f"--secure-dir={root / 'etc' / 'dqueue' / 'keys'}")
            spec = NodeSpec(node, f"{addresses[node]}:8080", [*topo.exec_prefix(node), *argv],
                            str(root / "node.log"))
            nodes.append(NodeProcess(spec))
            nodes[-1].start()
        yield topo, nodes
    finally:
        for process in nodes:
            process.kill()
        netns.destroy(topo)


@pytest.fixture
def vm_cluster(provisioned) -> Iterator[tuple[netns.Topology, list[NodeProcess]]]:
    """The three bootstrap VMs."""
    yield from _run_vms(provisioned, vagrant_addresses())


@pytest.fixture
def vm_cluster_with_joiner(provisioned) -> Iterator[tuple[netns.Topology, list[NodeProcess]]]:
    """The three bootstrap VMs and the fourth, which waits to be added (vagrant up n4)."""
    yield from _run_vms(provisioned, {**vagrant_addresses(), **vagrant_joiners()})


def test_rendered_configs_form_a_cluster_on_the_vm_addresses(vm_cluster, provisioned):
    topo, nodes = vm_cluster
    token = (provisioned["n1"] / "test-token").read_text()
    addresses = topo.addresses

    def leader_and_write() -> dict[str, Any]:
        # Wait until every node answers and agrees on one leader.
        deadline = time.monotonic() + 90
        leader = None
        while time.monotonic() < deadline:
            bodies = [health(f"{addresses[node.id]}:8080", 0.5) for node in nodes]
            leaders = {b.get("leader_id") for b in bodies if b}
            if all(bodies) and len(leaders) == 1 and None not in leaders:
                leader = next(b for b in bodies if b and b.get("role") == "leader")
                break
            time.sleep(0.2)
        follower = next(n for n in addresses if leader and n != leader["node_id"])
        follower_view = health(f"{addresses[follower]}:8080", 2.0)
        status, task = http_json(f"{addresses[follower]}:8080", "POST", "/tasks",
                                 {"type": "vm", "payload": {"hello": "vagrant"}}, timeout_s=10,
                                 token=token)
        seen = {}
        for node in addresses:
            seen[node] = http_json(f"{addresses[node]}:8080", "GET", f"/tasks/{task['id']}",
                                   timeout_s=10, token=token)[0]
        refused = http_json(f"{addresses[follower]}:8080", "GET", "/stats", timeout_s=10)[0]
        return {"leader": leader, "follower_view": follower_view, "status": status,
                "task": task, "seen": seen, "refused": refused}

    outcome = in_namespace(topo.hub, leader_and_write)
    logs = "\n".join(Path(n.spec.log_path).read_text()[-2000:] for n in nodes)
    assert outcome["leader"] is not None, logs
    leader_id = outcome["leader"]["node_id"]
    assert outcome["follower_view"]["leader_id"] == leader_id
    assert outcome["follower_view"]["leader_http"] == f"{addresses[leader_id]}:8080"
    assert outcome["status"] == 201
    assert outcome["task"]["payload"] == {"hello": "vagrant"}
    assert outcome["seen"] == {node: 200 for node in addresses}
    assert outcome["refused"] == 401  # tokens installed: none sent, none accepted
    assert all(n.is_running() for n in nodes)
    # The addresses were private to the namespaces: the host never had them.
    root_addrs = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    assert not any(f"{ip}/" in root_addrs for ip in addresses.values())


def test_provisioning_without_keys_refuses_unless_insecure(provisioned, tmp_path):
    """No keys for the node: provisioning stops and says how to make them; --insecure renders
    a config that runs without keys (and says so)."""
    root = tmp_path / "vm"
    (root / "opt" / "dqueue").mkdir(parents=True)
    (root / "opt" / "dqueue" / "venv").symlink_to(provisioned["n1"] / "opt" / "dqueue" / "venv")
    table = ",".join(f"{node}={ip}" for node, ip in vagrant_addresses().items())
    base = ["bash", str(VAGRANT / "provision.sh"), "--src", str(ROOT), "--root", str(root),
            "--addresses", table]
    refused = subprocess.run([*base, "--keys", str(tmp_path / "none"), "n1"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert "keys init" in refused.stderr and "--insecure" in refused.stderr
    done = subprocess.run([*base, "--insecure", "n1"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    conf = tomllib.loads((root / "etc" / "dqueue" / "node.toml").read_text())
    assert conf["insecure"] is True and "secure_dir" not in conf


@pytest.mark.slow
def test_the_fourth_vm_joins_and_another_member_is_removed(vm_cluster_with_joiner, provisioned):
    """vagrant/README.md, "Add a fourth member, remove another": n4 starts with --join and no
    --peers, waits, is added with its public key file, catches up, is promoted; n3 is then
    removed, and the cluster of n1, n2, n4 serves writes."""
    topo, nodes = vm_cluster_with_joiner
    token = (provisioned["n1"] / "test-token").read_text()
    addresses = topo.addresses
    joiner = next(iter(vagrant_joiners()))
    key = public_key_arg(str(provisioned[joiner] / "etc" / "dqueue" / "keys" / "members"
                             / f"{joiner}.key"))

    def scenario() -> dict[str, Any]:
        urls = [f"http://{addresses[n]}:8080" for n in vagrant_addresses()]
        admin = ClusterAdmin(Client(urls, token=token, retry=RetryPolicy(deadline_s=90.0)))
        wait_for(lambda: admin.status().get("leader_id"), 90, "a leader of n1, n2, n3",
                 ignore=(DQueueError,))
        waiting = wait_for(lambda: health(f"{addresses[joiner]}:8080", 0.5), 60,
                           f"{joiner} serving /health")
        added = admin.add_member(joiner, f"{addresses[joiner]}:9090",
                                 f"{addresses[joiner]}:8080", key)
        removed = admin.remove("n3")
        final = [f"http://{addresses[n]}:8080" for n in ("n1", "n2", joiner)]
        client = Client(final, token=token, retry=RetryPolicy(deadline_s=60.0))
        task = client.enqueue("vm", {"after": "n3 left"})
        seen = wait_for(lambda: client.get(task.id), 30, "the task", ignore=(DQueueError,))
        n3_status = wait_for(
            lambda: (health(f"{addresses['n3']}:8080", 0.5) or {}).get("status") == "removed",
            60, "n3 reporting itself removed")
        return {"waiting": waiting, "added": added, "removed": removed, "seen": seen,
                "n3_removed": n3_status, "status": admin.status()}

    try:
        outcome = in_namespace(topo.hub, scenario)
    finally:
        logs = "\n".join(Path(n.spec.log_path).read_text()[-3000:] for n in nodes)
    assert outcome["waiting"]["role"] == "follower", logs
    assert outcome["added"]["voters"] == ["n1", "n2", "n3", joiner]
    assert sorted(outcome["removed"]["voters"]) == ["n1", "n2", joiner]
    assert outcome["seen"].payload == {"after": "n3 left"}
    assert outcome["n3_removed"]
    assert "join_waiting" in Path(provisioned[joiner] / "node.log").read_text()
