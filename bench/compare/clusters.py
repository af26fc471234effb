"""Start, inspect and tear down the three clusters, each of 3 nodes on 127.0.0.1.

Every process a cluster starts runs in its own session, is recorded by PID (its process group)
and is killed by that PID at the end; its data lives in the run's temporary folder.

- NATS JetStream: 3 ``nats-server`` processes in one cluster; one file-storage stream with 3
  replicas per workload.
- RabbitMQ: 3 nodes (``bench1@localhost`` ...) with their own ports, data folders, a shared
  Erlang cookie and their own ``epmd``, joined with ``rabbitmqctl join_cluster``; one quorum
  queue per workload.
- dqueue: ``dqueue.testing.cluster.NodeCluster`` (what ``scripts/cluster.sh`` runs, on free
  loopback ports); one task type per workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters import Target

ROOT = Path(__file__).resolve().parents[2]
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
COOKIE = "DQUEUEBENCHCOMPARECOOKIE"


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, step_s: float = 0.2) -> Any:
    """Call ``check`` until it returns something truthy; raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # still starting; kept for the message
            last_exc = exc
        time.sleep(step_s)
    raise RuntimeError(f"{what}: not ready after {timeout_s:g} s ({last_exc!r})")


class Procs:
    """Processes started in their own sessions, killed by process group id."""

    def __init__(self) -> None:
        self.groups: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
              ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as ``name`` with its output in ``log``."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        self.groups[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL the process group of ``name`` and reap it."""
        proc = self.groups.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def kill_all(self) -> None:
        """Every group still recorded."""
        for name in list(self.groups):
            self.kill(name)


class Cluster:
    """What the driver needs from each system."""

    label = ""

    def start(self) -> None:
        """Start the nodes and wait until the cluster serves."""
        raise NotImplementedError

    def prepare(self, name: str, consumer: bool = False) -> None:
        """Create the stream, queue (or nothing, for dqueue) of one workload."""

    def leader_target(self, kind: str, name: str) -> Target:
        """A target of clients connected to the leader of ``name``."""
        raise NotImplementedError

    def follower_target(self, kind: str, name: str) -> Target:
        """A target of a client connected to one node that does not lead ``name``."""
        raise NotImplementedError

    def kill_leader(self, name: str) -> str:
        """SIGKILL the node leading ``name``; return its name."""
        raise NotImplementedError

    def live_target(self, kind: str, name: str) -> Target:
        """A target on the nodes still running (for the read-back after a kill)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Kill every process started and leave nothing running."""
        raise NotImplementedError


class ServerCluster(Cluster):
    """Three server processes the driver starts itself (NATS, RabbitMQ): one leader per
    stream or queue, asked of the servers; clients of ``system`` connect by ``url``."""

    system = ""
    nodes: list[str]
    procs: Procs
    alive: set[str]

    def url(self, node: str) -> str:
        """The client URL of ``node``."""
        raise NotImplementedError

    def leader(self, name: str) -> str:
        """The node leading stream or queue ``name``."""
        raise NotImplementedError

    def follower_target(self, kind: str, name: str) -> Target:
        leader = self.leader(name)
        other = next(n for n in self.nodes if n != leader)
        return Target(self.system, (self.url(other),), name)

    def kill_leader(self, name: str) -> str:
        leader = self.leader(name)
        self.procs.kill(leader)
        self.alive.discard(leader)
        return leader


# -- NATS JetStream ------------------------------------------------------------------------


class NatsCluster(ServerCluster):
    """3 nats-server processes; client ports base+1..3, route ports base+11..13."""

    label = "NATS JetStream"
    system = "nats"

    def __init__(self, work_dir: Path, base_port: int) -> None:
        self.dir = work_dir / "nats"
        self.base = base_port
        self.nodes = ["n1", "n2", "n3"]
        self.procs = Procs()
        self.alive = set(self.nodes)

    def url(self, node: str) -> str:
        """The client URL of ``node``."""
        return f"nats://127.0.0.1:{self.base + 1 + self.nodes.index(node)}"

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        routes = ", ".join(f'"nats-route://127.0.0.1:{self.base + 11 + i}"' for i in range(3))
        for i, node in enumerate(self.nodes):
            conf = self.dir / f"{node}.conf"
            conf.write_text(
                f"server_name: {node}\nlisten: 127.0.0.1:{self.base + 1 + i}\n"
                f'jetstream {{ store_dir: "{self.dir / node}" }}\n'
                f"cluster {{ name: bench, listen: 127.0.0.1:{self.base + 11 + i}, "
                f"routes: [{routes}] }}\n")
            self.procs.start(node, ["nats-server", "-c", str(conf)], self.dir / f"{node}.log")
        wait_for(lambda: self._admin(self._account_ready), 60, "NATS JetStream cluster")

    def _admin(self, action: Callable[[Any], Any]) -> Any:
        import nats

        async def run() -> Any:
            nc = await nats.connect(servers=[self.url(n) for n in sorted(self.alive)],
                                    connect_timeout=2, max_reconnect_attempts=2)
            try:
                return await action(nc.jetstream(timeout=5))
            finally:
                await nc.close()

        return asyncio.run(run())

    @staticmethod
    async def _account_ready(js: Any) -> bool:
        await js.account_info()
        return True

    def prepare(self, name: str, consumer: bool = False) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

        async def create(js: Any) -> bool:
            await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.tasks"],
                                             storage=StorageType.FILE, num_replicas=3))
            if consumer:
                await js.add_consumer(name, ConsumerConfig(
                    durable_name="workers", ack_policy=AckPolicy.EXPLICIT, ack_wait=30,
                    max_ack_pending=1000))
            return True

        wait_for(lambda: self._admin(create), 30, f"NATS stream {name}")

    def leader(self, name: str) -> str:
        """The server leading stream ``name``."""
        async def ask(js: Any) -> str | None:
            info = await js.stream_info(name)
            return info.cluster.leader if info.cluster else None

        return str(wait_for(lambda: self._admin(ask), 30, f"leader of stream {name}"))

    def leader_target(self, kind: str, name: str) -> Target:
        return Target("nats", (self.url(self.leader(name)),), name,
                      extra={"durable": "workers"})

    def live_target(self, kind: str, name: str) -> Target:
        return Target("nats", tuple(self.url(n) for n in sorted(self.alive)), name,
                      timeout_s=10.0)

    def stop(self) -> None:
        self.procs.kill_all()


# -- RabbitMQ ------------------------------------------------------------------------------


class RabbitCluster(ServerCluster):
    """3 RabbitMQ nodes; AMQP base+21..23, distribution base+31..33, epmd base+40."""

    label = "RabbitMQ"
    system = "rabbitmq"

    def __init__(self, work_dir: Path, base_port: int) -> None:
        self.dir = work_dir / "rabbitmq"
        self.base = base_port
        self.nodes = ["bench1@localhost", "bench2@localhost", "bench3@localhost"]
        self.procs = Procs()
        self.alive = set(self.nodes)
        self.env = dict(os.environ)
        self.env.update({"HOME": str(self.dir / "home"), "ERL_EPMD_PORT": str(base_port + 40),
                         "ERL_EPMD_ADDRESS": "127.0.0.1", "LC_ALL": "C.UTF-8"})

    def url(self, node: str) -> str:
        """The AMQP URL of ``node``."""
        return f"amqp://guest:guest@127.0.0.1:{self.base + 21 + self.nodes.index(node)}/"

    def ctl(self, node: str, *args: str, timeout_s: float = 60.0) -> str:
        """Run ``rabbitmqctl -n node args``; return its output (raise on failure)."""
        done = subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", node, *args],
                              env=self.env, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        home = self.dir / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(COOKIE)
        cookie.chmod(0o400)
        # Our own epmd on its own port: a system RabbitMQ (or anything else) is not touched.
        self.procs.start("epmd", ["epmd", "-port", str(self.base + 40), "-address",
                                  "127.0.0.1"], self.dir / "epmd.log", self.env)
        for i, node in enumerate(self.nodes):
            d = self.dir / f"n{i + 1}"
            d.mkdir()
            (d / "enabled_plugins").write_text("[].\n")
            (d / "rabbitmq.conf").write_text(
                f"listeners.tcp.1 = 127.0.0.1:{self.base + 21 + i}\nloopback_users = none\n")
            env = dict(self.env)
            env.update({
                "RABBITMQ_NODENAME": node, "RABBITMQ_DIST_PORT": str(self.base + 31 + i),
                "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
                "RABBITMQ_PID_FILE": str(d / "pid"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                    "-kernel inet_dist_use_interface {127,0,0,1}",
            })
            self.procs.start(node, [str(RABBIT_BIN / "rabbitmq-server")], d / "out.log", env)
        for node in self.nodes:
            # await_startup refuses a node that has not registered with epmd yet: ask again.
            wait_for(lambda n=node: self.ctl(n, "await_startup", timeout_s=60) or True, 120,
                     f"RabbitMQ node {node}", step_s=1.0)
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", self.nodes[0])
            self.ctl(node, "start_app")
        status = self.ctl(self.nodes[0], "cluster_status")
        missing = [n for n in self.nodes if status.count(n) < 2]
        if missing:
            raise RuntimeError(f"RabbitMQ: {missing} not in the cluster:\n{status}")

    def prepare(self, name: str, consumer: bool = False) -> None:
        import aiormq

        async def declare() -> None:
            # Declared through node 1: the leader of a new quorum queue is on the declaring
            # client's node by default; the driver asks where it is rather than assume it.
            conn = await aiormq.connect(self.url(self.nodes[0]))
            channel = await conn.channel()
            await channel.queue_declare(name, durable=True,
                                        arguments={"x-queue-type": "quorum"})
            await conn.close()

        asyncio.run(declare())

    def leader(self, name: str) -> str:
        """The node leading quorum queue ``name``."""
        def ask() -> str | None:
            node = next(iter(sorted(self.alive)))
            for line in self.ctl(node, "list_queues", "-q", "name", "leader").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == name and parts[1] in self.alive:
                    return parts[1]
            return None

        return str(wait_for(ask, 30, f"leader of queue {name}"))

    def leader_target(self, kind: str, name: str) -> Target:
        return Target("rabbitmq", (self.url(self.leader(name)),), name)

    def live_target(self, kind: str, name: str) -> Target:
        return Target("rabbitmq", (self.url(sorted(self.alive)[0]),), name, timeout_s=10.0)

    def stop(self) -> None:
        # The nodes first, then their epmd; data are in the temporary folder, so a kill is fine.
        for node in self.nodes:
            self.procs.kill(node)
        self.procs.kill_all()


# -- dqueue --------------------------------------------------------------------------------


class DqueueCluster(Cluster):
    """3 dqueue nodes as shipped (``dqueue.testing.NodeCluster``: the project's launcher, its
    default settings, free loopback ports, no peer keys as the other two have no TLS)."""

    label = "dqueue"

    def __init__(self, work_dir: Path, base_port: int) -> None:
        self.root = work_dir / "dqueue"
        self.cluster: Any = None

    def start(self) -> None:
        from dqueue.testing.cluster import NodeCluster

        self.root.mkdir(parents=True)
        self.cluster = NodeCluster(self.root, 3, start=True)
        self.cluster.leader()

    def leader(self) -> str:
        """The node that every running member names as leader."""
        return str(self.cluster.leader(deadline_s=30.0))

    def _target(self, kind: str, node: str, name: str, timeout_s: float = 5.0) -> Target:
        return Target(kind, (self.cluster.url(node),), name, workers=(self.cluster.zmq(node),),
                      timeout_s=timeout_s)

    def leader_target(self, kind: str, name: str) -> Target:
        return self._target(kind, self.leader(), name)

    def follower_target(self, kind: str, name: str) -> Target:
        leader = self.leader()
        return self._target(kind, next(n for n in self.cluster.ids if n != leader), name)

    def kill_leader(self, name: str) -> str:
        leader = self.leader()
        self.cluster.kill(leader)
        return leader

    def live_target(self, kind: str, name: str) -> Target:
        return self._target("dqueue-http", self.leader(), name, timeout_s=30.0)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.close()


def parse_version(text: str) -> str:
    """The first dotted version number in ``text``."""
    match = re.search(r"\d+\.\d+\.\d+", text)
    return match.group(0) if match else "?"
