"""``dqueue-worker``: run a Worker's handlers against a dqueue cluster, over HTTP or ZeroMQ.

    dqueue-worker --server http://localhost:8081
    dqueue-worker --zmq tcp://127.0.0.1:9191 --app myapp.tasks:worker --concurrency 8

With no ``--app``, the built-in demo handlers run (``email``, ``sleep``, ``fail``, ``noop``).
SIGTERM or Ctrl-C drains (finish running tasks within ``--grace``, hand back the rest); a second
one stops at once. Exit status: 0 after a drain, 1 after a forced stop, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
import uuid
from collections.abc import Sequence

from dqueue import __version__
from dqueue.cli import normalize_argv
from dqueue.client.env import DEFAULT_SERVER, SERVER_ENV, TOKEN_ENV, resolve_servers
from dqueue.client.worker_keys import WorkerKeys
from dqueue.durations import parse_duration_ms
from dqueue.logs import configure_logging
from dqueue.queue import fields
from dqueue.worker import demo
from dqueue.worker.app import Worker
from dqueue.worker.http_runtime import HttpRuntime
from dqueue.worker.prefork import Prefork
from dqueue.worker.rate_limits import apply_rate_limits, warn_unset
from dqueue.worker.runtime import RuntimeConfig, WorkerRuntime
from dqueue.worker.zmq_runtime import ZmqRuntime


def load_app(spec: str) -> Worker:
    """Import ``module:attribute`` (a ``Worker``, or a function returning one).

    Raises:
        ValueError: The spec is malformed or names something that is not a Worker.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--app wants module:attribute, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    obj = getattr(module, attr, None)
    if callable(obj) and not isinstance(obj, Worker):
        obj = obj()
    if not isinstance(obj, Worker):
        raise ValueError(f"{spec} is not a dqueue.worker.Worker")
    return obj


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of dqueue-worker."""
    p = argparse.ArgumentParser(prog="dqueue-worker", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--server", action="append",
                        help="node URL, repeatable or comma-separated (default: "
                             f"${SERVER_ENV} or {DEFAULT_SERVER})")
    target.add_argument("--zmq", help="worker gateway address, e.g. tcp://127.0.0.1:9191 "
                                      "(comma-separated: several, tried in turn)")
    p.add_argument("--app", help="module:attribute of your Worker (default: demo handlers)")
    p.add_argument("--concurrency", type=int, default=4,
                   help="handler threads, or processes with --pool processes (default 4)")
    p.add_argument("--pool", choices=("threads", "processes"), default="threads",
                   help="run handlers on threads of this process (default), or in that many "
                        "worker processes of one thread each")
    p.add_argument("--prefetch", type=int, default=None,
                   help="tasks buffered beyond the running ones (default: automatic, at least "
                        "concurrency, up to 100 for handlers that finish them within ~100 ms)")
    p.add_argument("--types", help="comma-separated task types (default: all registered)")
    p.add_argument("--queues", help="comma-separated queues to lease from (default: default)")
    p.add_argument("--worker-id", help="lease holder id (default: host-pid-random; with worker "
                                       "keys the key's name, the only id the gateway accepts)")
    p.add_argument("--lease-timeout", default="30s", help="lease per task and per extension")
    p.add_argument("--wait", default="5s", help="long-poll wait of one lease request")
    p.add_argument("--grace", default="30s", help="how long SIGTERM lets running tasks finish")
    p.add_argument("--heartbeat", default="5s",
                   help="how often to tell the cluster this worker is alive (GET /workers "
                        "drops it after 3 missed); 0 sends none")
    p.add_argument("--curve-key", metavar="FILE",
                   help="with --zmq: this worker's secret key file (w1.key_secret from "
                        "`dqueue-cli keys init ... --workers w1`); needs --server-key")
    p.add_argument("--server-key", metavar="FILE",
                   help="with --zmq: the node's public key file (members/<node>.key)")
    p.add_argument("--secure-dir", metavar="DIR",
                   help="with --zmq: the worker's key folder from `dqueue-cli keys init` (its "
                        "key pair and members/); with several nodes, name each in --zmq as "
                        "ID=tcp://host:port")
    p.add_argument("--token", help="bearer token of the HTTP API, with the consume role "
                                    f"(default: ${TOKEN_ENV})")
    p.add_argument("--ca-file", help="with an https:// --server: PEM file of the CA that "
                                      "signed the proxy's certificate")
    p.add_argument("--log-level", default="info",
                   help="debug, info, warning or error (default info)")
    p.add_argument("--log-format", choices=("json", "text"), default="json",
                   help="json: one JSON object per line, the nodes' format (default); text: "
                        "for people reading a terminal")
    return p


def make_runtime(args: argparse.Namespace, worker: Worker) -> WorkerRuntime:
    """Build the HTTP or ZeroMQ runtime the arguments ask for."""
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    if args.prefetch is not None and args.prefetch < 0:
        raise ValueError("--prefetch must not be negative")
    endpoints, keys = zmq_endpoints(args) if args.zmq else ([], {})
    worker_id = (key_worker_id(args.worker_id, keys) or args.worker_id
                 or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    types = tuple(t for t in (args.types or "").split(",") if t)
    queues = tuple(q for q in (args.queues or "").split(",") if q)
    config = RuntimeConfig(
        worker_id=worker_id,
        concurrency=args.concurrency,
        prefetch=args.prefetch,
        types=types,
        queues=queues,
        lease_ms=parse_duration_ms(args.lease_timeout),
        wait_ms=parse_duration_ms(args.wait),
        grace_ms=parse_duration_ms(args.grace),
        heartbeat_ms=heartbeat_ms(args.heartbeat),
    )
    if args.zmq:
        return ZmqRuntime(worker, config, endpoints, keys=keys)
    return HttpRuntime(worker, config, resolve_servers(args.server), token=args.token,
                       ca_file=args.ca_file)


def heartbeat_ms(text: str) -> int:
    """``--heartbeat``: 0, or an interval of 0.1 s to 5 min (the workers table's bound).

    Raises:
        ValueError: any other value.
    """
    value = parse_duration_ms(text)
    if value and not fields.HEARTBEAT_MS.accepts(value):
        raise ValueError(f"--heartbeat must be 0 or from {fields.HEARTBEAT_MS.low} ms to "
                         f"{fields.HEARTBEAT_MS.high // 60_000} min")
    return value


def key_worker_id(worker_id: str | None, keys: dict[str, WorkerKeys]) -> str:
    """The worker id that CURVE worker keys impose: their name ("" without keys, or with a key
    file not named ``<name>.key_secret``, where the gateway's refusal names the id it wants).

    Raises:
        ValueError: ``--worker-id`` names another worker than the keys (a gateway with worker
            keys accepts only the key's name as the worker id: docs/security.md).
    """
    names = sorted({k.name for k in keys.values()})
    if len(names) != 1 or not names[0]:
        return ""
    if worker_id is not None and worker_id != names[0]:
        raise ValueError(f"--worker-id {worker_id!r}: with worker keys the worker id is the key's "
                         f"name, {names[0]!r} (a gateway accepts no other); leave --worker-id out")
    return names[0]


def zmq_endpoints(args: argparse.Namespace) -> tuple[list[str], dict[str, WorkerKeys]]:
    """The gateway endpoints of ``--zmq`` and the CURVE keys to use with each.

    Raises:
        ValueError: a key option is incomplete or a key file is missing or malformed.
    """
    if bool(args.curve_key) != bool(args.server_key):
        raise ValueError("--curve-key and --server-key go together (or use --secure-dir)")
    endpoints: list[str] = []
    keys: dict[str, WorkerKeys] = {}
    for item in (e.strip() for e in args.zmq.split(",")):
        if not item:
            continue
        member_id, sep, endpoint = item.partition("=")
        if not sep:
            member_id, endpoint = "", item
        endpoints.append(endpoint)
        if args.curve_key:
            keys[endpoint] = WorkerKeys.from_files(args.curve_key, args.server_key)
        elif args.secure_dir:
            keys[endpoint] = WorkerKeys.from_secure_dir(args.secure_dir, member_id or None)
    return endpoints, keys


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dqueue-worker``."""
    parser = build_parser()
    raw = normalize_argv(list(sys.argv[1:] if argv is None else argv), parser)
    args = parser.parse_args(raw)
    try:
        worker = load_app(args.app) if args.app else demo.build()
        runtime = make_runtime(args, worker)
        # The node's format (dqueue.logs), its node_id field naming this worker.
        configure_logging(runtime.config.worker_id, "worker", args.log_level, args.log_format)
        if args.zmq:
            warn_unset(worker)
        else:  # enforced by the cluster: set before leasing (rate_limits.py)
            apply_rate_limits(worker, args.server, args.token, args.ca_file)
    except (ValueError, ImportError) as exc:
        print(f"dqueue-worker: {exc}", file=sys.stderr)
        return 2
    if args.pool == "processes":
        # With worker keys every child is the key's worker (the gateway accepts no other id).
        keyed = isinstance(runtime, ZmqRuntime) and bool(key_worker_id(None, runtime.keys))
        return Prefork(raw, args.concurrency, runtime.config.worker_id, args.prefetch,
                       same_id=keyed).run()
    runtime.install_signal_handlers()
    return runtime.run()


if __name__ == "__main__":
    sys.exit(main())
