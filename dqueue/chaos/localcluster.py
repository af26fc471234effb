"""``scripts/cluster.sh``: a cluster of local node processes, driven from the command line.

One folder (``--run-dir``, default ``run/cluster``) keeps each node's data directory, its log
(``<id>.log``) and its pid file (``<id>.pid``, the process group of the node). Every node of
``--conf-dir`` (one ``<id>.toml`` per node, default ``conf/cluster-3``) runs as its own session;
nodes start and are signalled as every launcher of dqueue does it (``dqueue.testing.processes``):
``kill`` (SIGKILL), ``pause`` (SIGSTOP) and ``resume`` (SIGCONT) go to the supervisor and each of
its Raft and API processes by PID, so a kill is a crash, not a graceful stop. A pid is trusted
only while that process's command line still names the node's data directory, so a stale pid
file never signals a stranger.

The cluster is secured by default: the first ``up`` (or ``restart``) writes CURVE keys for the
nodes of ``--conf-dir`` with ``dqueue-cli keys init`` into ``<run-dir>/keys`` and every node
starts with ``--secure-dir=<run-dir>/keys/<id>`` (docs/security.md). ``--insecure`` or
``DQUEUE_INSECURE=1`` starts the nodes without keys (loopback peers only).

``up --base-port N`` (or ``DQ_BASE_PORT``) moves every port: the i-th node (in id order) gets
HTTP ``N+i``, peers ``N+10+i`` and workers ``N+20+i`` on 127.0.0.1, overriding its config file;
the base is kept in ``<run-dir>/base_port`` for the later commands. The files' own ports are
that layout from 8080 (HTTP 8081-8083, peers 8091-8093, workers 8101-8103).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from dqueue.keys import SECRET_SUFFIX
from dqueue.testing.processes import NodeProcess, NodeSpec, health, signal_tree
from dqueue.testing.waits import wait_until

ROOT = Path(__file__).resolve().parents[2]


def insecure_from_env() -> bool:
    """Whether ``DQUEUE_INSECURE=1`` asks for a cluster without peer keys."""
    return os.environ.get("DQUEUE_INSECURE") == "1"


class LocalCluster:
    """The nodes of one config folder, run from one run folder."""

    def __init__(self, conf_dir: Path, run_dir: Path, secure: bool | None = None,
                 base_port: int | None = None) -> None:
        self.conf_dir, self.run_dir = conf_dir, run_dir
        self.base_port = base_port
        # Secured unless told otherwise, here or by DQUEUE_INSECURE=1 (which the failover demo
        # follows too when it restarts a node).
        self.secure = secure if secure is not None else not insecure_from_env()
        self.confs = {p.stem: p for p in sorted(conf_dir.glob("*.toml"))}
        if not self.confs:
            raise SystemExit(f"cluster: no <id>.toml node configs in {conf_dir}")

    def _port(self, node: str, offset: int) -> str:
        assert self.base_port is not None
        return f"127.0.0.1:{self.base_port + offset + list(self.confs).index(node) + 1}"

    def port_flags(self, node: str) -> list[str]:
        """The address flags of ``node`` under ``--base-port`` (none without it)."""
        if self.base_port is None:
            return []
        peers = ",".join(f"{n}={self._port(n, 10)}" for n in self.confs)
        peers_http = ",".join(f"{n}={self._port(n, 0)}" for n in self.confs)
        return [f"--http-addr={self._port(node, 0)}", f"--raft-addr={self._port(node, 10)}",
                f"--worker-addr={self._port(node, 20)}", f"--peers={peers}",
                f"--peers-http={peers_http}"]

    def http_addr(self, node: str) -> str:
        """host:port of the node's HTTP API, from its config (":8080" means 127.0.0.1)."""
        if self.base_port is not None:
            return self._port(node, 0)
        with open(self.confs[node], "rb") as handle:
            raw: dict[str, Any] = tomllib.load(handle)
        addr = str(raw.get("http_addr", raw.get("node", {}).get("http_addr", ":8080")))
        host, _, port = addr.rpartition(":")
        return f"{host if host not in ('', '0.0.0.0') else '127.0.0.1'}:{port}"

    def data_dir(self, node: str) -> Path:
        """The node's data directory inside the run folder."""
        return self.run_dir / node

    def pid(self, node: str) -> int | None:
        """The node's process group id if it is ours and alive, else None."""
        try:
            pid = int((self.run_dir / f"{node}.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            return None
        return pid if f"--data-dir={self.data_dir(node)}".encode() in cmdline else None

    def nodes(self, which: str | None = None) -> list[str]:
        """All node ids, or the one asked for (exits with a message if unknown)."""
        if which is None:
            return list(self.confs)
        if which not in self.confs:
            raise SystemExit(f"cluster: unknown node {which!r} (have {', '.join(self.confs)})")
        return [which]

    @property
    def keys_dir(self) -> Path:
        """Where the nodes' key folders are (``<keys_dir>/<id>``)."""
        return self.run_dir / "keys"

    def ensure_keys(self) -> None:
        """Create the nodes' keys with ``dqueue-cli keys init`` unless every node has its own."""
        if all((self.keys_dir / n / f"{n}{SECRET_SUFFIX}").exists() for n in self.confs):
            return
        done = subprocess.run(
            [str(ROOT / "bin" / "dqueue-cli"), "keys", "init", str(self.keys_dir),
             "--members", ",".join(self.confs), "--force"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"cluster: keys init failed: {done.stderr.strip()}")
        print(f"cluster: created peer keys in {self.keys_dir}")

    def start(self, node: str) -> None:
        """Start the node in its own session unless it already runs."""
        if self.pid(node):
            return
        self.data_dir(node).mkdir(parents=True, exist_ok=True)
        argv = [str(ROOT / "bin" / "dqueue"), f"--config={self.confs[node]}",
                f"--data-dir={self.data_dir(node)}", *self.port_flags(node)]
        if self.secure:
            self.ensure_keys()
            argv.append(f"--secure-dir={self.keys_dir / node}")
        # The node outlives this command: later commands find it by its pid file.
        process = NodeProcess(NodeSpec(id=node, http_addr=self.http_addr(node), argv=argv,
                                       log_path=str(self.run_dir / f"{node}.log")))
        process.start()
        assert process.proc is not None
        (self.run_dir / f"{node}.pid").write_text(f"{process.proc.pid}\n")
        print(f"{node}: started, pid {process.proc.pid}, http {self.http_addr(node)}")

    def signal(self, node: str, signum: int) -> bool:
        """Send a signal to the node's process group; False when the node is not running."""
        pid = self.pid(node)
        if pid is None:
            return False
        signal_tree(pid, signum)
        return True

    def kill(self, node: str) -> None:
        """SIGKILL the whole node, as a crash."""
        if self.signal(node, signal.SIGKILL):
            wait_until(lambda: self.pid(node) is None, 10.0)
            print(f"{node}: killed (SIGKILL)")
        else:
            print(f"{node}: not running")

    def stop(self, node: str, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL when the node has not exited after ``grace_s``."""
        self.signal(node, signal.SIGCONT)
        if not self.signal(node, signal.SIGTERM):
            return
        if not wait_until(lambda: self.pid(node) is None, grace_s):
            self.signal(node, signal.SIGKILL)
            wait_until(lambda: self.pid(node) is None, 10.0)
        print(f"{node}: stopped")

    def status_rows(self) -> list[dict[str, Any]]:
        """One row per node: process state and what its /health says."""
        rows = []
        for node in self.nodes():
            pid = self.pid(node)
            state = "down"
            if pid is not None:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
                state = "paused" if stat and stat[0] == "T" else "up"
            body = health(self.http_addr(node), 1.0) if state == "up" else None
            rows.append({"node": node, "pid": pid, "state": state, "http": self.http_addr(node),
                         "role": (body or {}).get("role", "-"),
                         "term": (body or {}).get("term", "-"),
                         "commit": (body or {}).get("commit_index", "-"),
                         "applied": (body or {}).get("applied_index", "-")})
        commits = [r["commit"] for r in rows if isinstance(r["commit"], int)]
        for row in rows:
            applied = row["applied"]
            row["lag"] = (max(commits) - applied) if commits and isinstance(applied, int) else "-"
        return rows

    def leader(self) -> str | None:
        """The node that reports itself leader at the highest term."""
        leaders = [(r["term"], r["node"]) for r in self.status_rows() if r["role"] == "leader"]
        return max(leaders)[1] if leaders else None


def print_status(cluster: LocalCluster) -> None:
    """The status table."""
    columns = ("node", "state", "pid", "http", "role", "term", "commit", "applied", "lag")
    rows = [[str(r[c] if r[c] is not None else "-") for c in columns]
            for r in cluster.status_rows()]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/cluster.sh``."""
    parser = argparse.ArgumentParser(prog="cluster.sh", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "logs", "kill", "pause",
                                            "resume", "restart", "leader", "urls"])
    parser.add_argument("node", nargs="?")
    parser.add_argument("--conf-dir", default=os.environ.get(
        "DQ_CONF_DIR", str(ROOT / "conf" / "cluster-3")))
    parser.add_argument("--run-dir", default=os.environ.get(
        "DQ_RUN_DIR", str(ROOT / "run" / "cluster")))
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds `up` waits for a leader (30)")
    parser.add_argument("-n", "--lines", type=int, default=20, help="log lines per node (20)")
    parser.add_argument("--base-port", type=int, default=(
        int(os.environ["DQ_BASE_PORT"]) if os.environ.get("DQ_BASE_PORT") else None),
        help="move every port: node i gets HTTP N+i, peers N+10+i, workers N+20+i")
    parser.add_argument("--insecure", action="store_true",
                        default=insecure_from_env(),
                        help="start the nodes without peer keys (also DQUEUE_INSECURE=1)")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    base_file = run_dir / "base_port"
    if args.base_port is not None and args.command in ("up", "restart"):
        base_file.write_text(f"{args.base_port}\n")
    elif args.base_port is None and base_file.exists():
        args.base_port = int(base_file.read_text())
    cluster = LocalCluster(Path(args.conf_dir).resolve(), run_dir, secure=not args.insecure,
                           base_port=args.base_port)
    if args.command in ("kill", "pause", "resume", "restart") and not args.node:
        parser.error(f"{args.command} needs a NODE")
    nodes = cluster.nodes(args.node)
    if args.command == "up":
        for node in nodes:
            cluster.start(node)
        if not wait_until(cluster.leader, args.timeout, 0.2):
            print(f"cluster: no leader after {args.timeout:g} s; logs in {run_dir}",
                  file=sys.stderr)
            print_status(cluster)
            return 1
        print_status(cluster)
    elif args.command == "down":
        for node in nodes:
            cluster.stop(node)
    elif args.command == "status":
        print_status(cluster)
    elif args.command == "leader":
        leader = cluster.leader()
        if leader is None:
            return 1
        print(leader)
    elif args.command == "urls":
        print(",".join(f"http://{cluster.http_addr(node)}" for node in nodes))
    elif args.command == "logs":
        for node in nodes:
            path = run_dir / f"{node}.log"
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            print(f"==> {path} <==")
            print("\n".join(lines[-args.lines:]))
    elif args.command == "kill":
        cluster.kill(args.node)
    elif args.command in ("pause", "resume"):
        signum = signal.SIGSTOP if args.command == "pause" else signal.SIGCONT
        ok = cluster.signal(args.node, signum)
        print(f"{args.node}: {args.command + 'd' if ok else 'not running'}")
        return 0 if ok else 1
    elif args.command == "restart":
        cluster.kill(args.node)
        cluster.start(args.node)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
