"""A whole chaos run: namespaces, nodes, workload, nemesis, drain, final read, check.

``python -m dqueue.chaos run --duration 60`` (what ``scripts/chaos-test.sh`` calls). The run
writes into ``--out``: ``history.jsonl``, ``report.txt``, ``report.json``, ``logs/<node>.log``
and the nodes' data directories. It exits 0 when the checker finds the history valid, 1 when it
does not, 2 when the run could not be made (no namespaces, no leader at start).

The nodes talk to each other over the namespaces' bridge (not loopback), so the cluster runs
with peer keys, written into ``--out``/keys as ``dqueue-cli keys init`` writes them, and every
node gets its ``--secure-dir``. ``--insecure`` runs without keys (the nodes get ``--insecure``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dqueue.chaos import netns
from dqueue.chaos.checker import check
from dqueue.chaos.history import EventType, HistoryWriter, Op, load
from dqueue.chaos.nemesis import ROTATION, Fault, Nemesis
from dqueue.chaos.workload import Producer, Worker, WorkloadConfig, request
from dqueue.keys import create_cluster_keys
from dqueue.testing.processes import NodeProcess, NodeSpec, find_leader, health, http_json
from dqueue.testing.waits import wait_until

ROOT = Path(__file__).resolve().parents[2]
HTTP_PORT, RAFT_PORT, WORKER_PORT = 8080, 9090, 9191
STATUSES = ("pending", "leased", "completed", "dead", "cancelled")


def node_specs(topo: netns.Topology, out: Path, conf_dir: Path | None,
               extra_args: list[str], keys_dir: Path | None = None) -> list[NodeSpec]:
    """The command line of every node, each inside its own namespace at its own address.

    With ``keys_dir`` each node gets ``--secure-dir=<keys_dir>/<id>`` (CURVE between the
    peers); every node gets ``--insecure``, which without keys admits peers from any address.
    """
    peers = ",".join(f"{n}={a}:{RAFT_PORT}" for n, a in topo.addresses.items())
    peers_http = ",".join(f"{n}={a}:{HTTP_PORT}" for n, a in topo.addresses.items())
    specs = []
    for node, address in topo.addresses.items():
        argv = [*topo.exec_prefix(node), str(ROOT / "bin" / "dqueue")]
        conf = conf_dir / f"{node}.toml" if conf_dir else None
        if conf is not None and conf.exists():
            argv.append(f"--config={conf}")
        argv += [f"--id={node}", f"--data-dir={out / 'data' / node}",
                 f"--http-addr={address}:{HTTP_PORT}", f"--raft-addr={address}:{RAFT_PORT}",
                 f"--worker-addr={address}:{WORKER_PORT}", f"--peers={peers}",
                 f"--peers-http={peers_http}",
                 *([f"--secure-dir={keys_dir / node}"] if keys_dir else []),
                 # The workload's HTTP clients are not on loopback and carry no token: serve
                 # them (open mode, docs/security.md). The peers stay on CURVE with keys.
                 "--insecure=true",
                 "--bootstrap=true", *extra_args]
        specs.append(NodeSpec(node, f"{address}:{HTTP_PORT}", argv,
                              str(out / "logs" / f"{node}.log")))
    return specs


class Observer(threading.Thread):
    """Polls every node's health and records each change of role, term or leader."""

    def __init__(self, nodes: list[NodeProcess], history: HistoryWriter,
                 period_s: float = 0.25) -> None:
        super().__init__(name="observer", daemon=True)
        self.nodes, self.history, self.period_s = nodes, history, period_s
        self.stopping = threading.Event()

    def run(self) -> None:
        """Loop until ``stopping`` is set."""
        last: dict[str, tuple[Any, ...]] = {}
        while not self.stopping.wait(self.period_s):
            for node in self.nodes:
                if node.paused or not node.is_running():
                    continue
                body = health(node.spec.http_addr, timeout_s=0.5)
                if body is None:
                    continue
                seen = (body.get("role"), body.get("term"), body.get("leader_id"))
                if last.get(node.id) != seen:
                    last[node.id] = seen
                    self.history.record("observer", EventType.INFO, Op.OBSERVE, {
                        "node": node.id, "role": seen[0], "term": seen[1],
                        "leader_id": seen[2], "commit_index": body.get("commit_index")})


def pending_count(addrs: tuple[str, ...]) -> int | None:
    """Pending plus leased tasks according to the first node that answers ``/stats``."""
    for addr in addrs:
        try:
            status, body = http_json(addr, "GET", "/stats", timeout_s=3.0)
        except OSError:
            continue
        if status == 200 and isinstance(body, dict) and isinstance(body.get("tasks"), dict):
            return int(body["tasks"].get("pending", 0)) + int(body["tasks"].get("leased", 0))
    return None


def final_read(ids: set[str], addrs: tuple[str, ...], history: HistoryWriter) -> None:
    """Read every task the run saw, then list every task by status, recording each."""
    read: set[str] = set()

    def record_task(task: dict[str, Any], source: str) -> None:
        read.add(str(task["id"]))
        history.record("final", EventType.OK, Op.FINAL, {
            "id": task["id"], "key": task.get("idempotency_key"), "status": task.get("status"),
            "attempts": task.get("attempts"), "source": source})

    for task_id in sorted(ids):
        outcome = None
        for attempt in range(20):
            outcome = request(addrs[attempt % len(addrs)], "GET", f"/tasks/{task_id}", None, 5.0)
            if outcome.type is EventType.OK or outcome.status == 404:
                break
            time.sleep(0.2)
        if outcome is not None and outcome.type is EventType.OK and isinstance(outcome.body,
                                                                                dict):
            record_task(outcome.body, "get")
        elif outcome is not None and outcome.status == 404:
            history.record("final", EventType.FAIL, Op.FINAL, {"id": task_id}, "not_found")
        else:
            history.record("final", EventType.INFO, Op.FINAL, {"id": task_id}, "unreadable")
    for status in STATUSES:
        cursor: str | None = None
        while True:
            path = f"/tasks?status={status}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
            outcome = request(addrs[0], "GET", path, None, 10.0)
            if outcome.type is not EventType.OK or not isinstance(outcome.body, dict):
                history.record("final", EventType.INFO, Op.PHASE,
                               {"phase": "list", "status": status}, outcome.error)
                break
            for task in outcome.body.get("tasks", []):
                if str(task.get("id")) not in read:
                    record_task(task, "list")
            cursor = outcome.body.get("next_cursor")
            if not cursor:
                break


def run(args: argparse.Namespace) -> int:
    """One chaos run; see the module docstring."""
    reason = netns.unavailable_reason()
    if reason:
        print(f"chaos: cannot create network namespaces: {reason}", file=sys.stderr)
        print("chaos: partitions would not be real; refusing to run", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    rng = random.Random(seed)
    node_ids = [f"n{i + 1}" for i in range(args.nodes)]
    topo = netns.subnet_topology(args.prefix or f"dqc{secrets.token_hex(3)}", node_ids,
                                 args.subnet)
    conf_dir = Path(args.conf_dir) if args.conf_dir else None
    keys_dir = None if args.insecure else out / "keys"
    if keys_dir is not None:
        create_cluster_keys(str(keys_dir), node_ids, force=True)
    nodes = [NodeProcess(spec)
             for spec in node_specs(topo, out, conf_dir, args.node_arg, keys_dir)]
    addrs = tuple(node.spec.http_addr for node in nodes)
    faults = tuple(Fault(f) for f in args.faults.split(",") if f) if args.faults else ROTATION
    threads: list[Any] = []
    with open(out / "history.jsonl", "w", encoding="utf-8") as history_file:
        history = HistoryWriter(history_file)
        history.record("runner", EventType.INFO, Op.META, {
            "seed": seed, "duration_s": args.duration, "interval_s": args.interval,
            "nodes": topo.addresses, "faults": [f.value for f in faults],
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        print(f"chaos: seed {seed}, namespaces {topo.prefix}-*, output in {out}", flush=True)
        try:
            netns.create(topo)
            netns.enter(topo.hub)  # every thread and child from here on lives in the hub
            for node in nodes:
                node.start()
            if not wait_until(lambda: find_leader(nodes), args.start_timeout, 0.2):
                print("chaos: no leader within the start timeout; see the logs in "
                      f"{out / 'logs'}", file=sys.stderr)
                return 2
            print(f"chaos: leader {find_leader(nodes)}; running {args.duration:g} s of faults",
                  flush=True)
            config = WorkloadConfig(http_addrs=addrs, enqueues_per_s=args.rate,
                                    lease_s=args.lease_seconds)
            observer = Observer(nodes, history)
            producers = [Producer(f"producer-{i + 1}", config, history,
                                  random.Random(rng.random())) for i in range(args.producers)]
            workers = [Worker(f"worker-{i + 1}", config, history, random.Random(rng.random()))
                       for i in range(args.workers)]
            nemesis = Nemesis(nodes, topo, history, random.Random(rng.random()),
                              interval_s=args.interval, hold_s=args.hold, faults=faults,
                              kill_leader=not args.no_leader_kills)
            threads = [observer, *producers, *workers, nemesis]
            for thread in threads:
                thread.start()
            time.sleep(args.duration)  # the run itself: the threads do the work

            nemesis.stopping.set()
            nemesis.join(timeout=60)
            for producer in producers:
                producer.stopping.set()
            for producer in producers:
                producer.join(timeout=30)
            history.record("runner", EventType.INFO, Op.PHASE, {"phase": "drain"})
            print("chaos: faults stopped, cluster healed; draining", flush=True)
            wait_until(lambda: find_leader(nodes), args.start_timeout, 0.2)
            drained = wait_until(lambda: pending_count(addrs) == 0, args.drain_timeout, 0.5)
            for worker in workers:
                worker.stopping.set()
            for worker in workers:
                worker.join(timeout=30)
            history.record("runner", EventType.INFO, Op.PHASE,
                           {"phase": "final", "drained": bool(drained)})
            history_file.flush()
            events_so_far = _ids_seen(out / "history.jsonl")
            final_read(events_so_far, addrs, history)
            observer.stopping.set()
            observer.join(timeout=10)
            history.record("runner", EventType.INFO, Op.PHASE, {"phase": "end"})
            errors = list(nemesis.errors)
        finally:
            for thread in threads:
                thread.stopping.set()
                if isinstance(thread, Nemesis):
                    thread.abort.set()
            for node in nodes:
                node.stop()
            netns.destroy(topo)
    report = check(load(str(out / "history.jsonl")))
    text = report.render() + "".join(f"\nnemesis error: {e}" for e in errors)
    (out / "report.txt").write_text(text + "\n")
    (out / "report.json").write_text(json.dumps(
        {**report.to_plain(), "nemesis_errors": errors, "seed": seed}, indent=2) + "\n")
    print(text, flush=True)
    return 0 if report.valid and not errors else 1


def _ids_seen(path: Path) -> set[str]:
    """Task ids from acknowledged enqueues and from leases in the history so far."""
    ids = set()
    for event in load(str(path)):
        if event.type is EventType.OK and event.f in (Op.ENQUEUE, Op.LEASE) and event.value.get(
                "id"):
            ids.add(str(event.value["id"]))
    return ids


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m dqueue.chaos run``."""
    parser = argparse.ArgumentParser(prog="chaos-test",
                                     description="Run a dqueue cluster under faults and check.")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of faults (60)")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="seconds between leader kills; other faults come half-way (10)")
    parser.add_argument("--hold", type=float, default=3.0,
                        help="seconds a fault lasts; partitions last twice as long (3)")
    parser.add_argument("--faults", default="",
                        help="comma list from: " + ", ".join(f.value for f in ROTATION))
    parser.add_argument("--no-leader-kills", action="store_true",
                        help="do not kill the leader every interval")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=10.0, help="enqueues/s per producer")
    parser.add_argument("--lease-seconds", type=float, default=3.0)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=os.path.join("run", time.strftime("chaos-%Y%m%d-%H%M%S")))
    parser.add_argument("--conf-dir", default=str(ROOT / "conf" / "cluster-3"),
                        help="node config files <id>.toml (addresses are overridden)")
    parser.add_argument("--node-arg", action="append", default=[],
                        help="extra flag for every node, e.g. --node-arg=--log-format=text")
    parser.add_argument("--insecure", action="store_true",
                        help="run the nodes without peer keys (they get --insecure)")
    parser.add_argument("--subnet", default="10.77.0", help="first three octets, namespaces only")
    parser.add_argument("--prefix", default="", help="namespace name prefix (random)")
    parser.add_argument("--start-timeout", type=float, default=60.0)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m dqueue.chaos run``."""
    return run(build_parser().parse_args(argv))
