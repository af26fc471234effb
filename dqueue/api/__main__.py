"""The API process: ``python -m dqueue.api --config-json JSON`` (started by the supervisor).

Serves the HTTP API with waitress and runs the ZeroMQ worker gateway on its own thread. SIGTERM
or SIGINT drain it: no new connections, requests in flight finish, then it exits 0. It also
stops when its parent (the supervisor) is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
import threading
from collections.abc import Sequence

import zmq
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.api.auth import http_mode, load_token_file, log_port_mode
from dqueue.api.gateway import WorkerGateway
from dqueue.api.server import HttpServer
from dqueue.api.worker_auth import key_port_mode
from dqueue.config import NodeConfig
from dqueue.exit_status import ApiExit
from dqueue.keys import PeerKeyError
from dqueue.logs import configure_logging, log_event
from dqueue.port_holder import bind_failure_message
from dqueue.protocol.ipc_client import RaftClient
from dqueue.tokens import TokenFileError
from dqueue.zmq_seed import seed_libc_random

logger = logging.getLogger("dqueue.api")

# How often the main thread checks that the supervisor is still there.
PARENT_CHECK_S = 0.5
# How long the worker gateway may take to return after stop().
GATEWAY_STOP_S = 2.0
# How long the worker gateway may take to bind its port at start.
GATEWAY_START_S = 10.0


def _die_with_thread(args: threading.ExceptHookArgs) -> None:
    """A thread that dies takes the process down, so that the supervisor restarts it (a dead
    worker gateway thread once left a process that served HTTP but no worker)."""
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "?"
    log_event(logger, logging.CRITICAL, "thread_died", thread=thread,
              error=f"{args.exc_type.__name__}: {args.exc_value}")
    logging.shutdown()
    os._exit(ApiExit.THREAD_DIED)


def raise_fd_limit() -> int:
    """Raise the soft limit of open files to the hard one (every HTTP connection holds one);
    return the soft limit in force."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        return int(soft)
    except (OSError, ValueError):
        return 1024


def main(argv: Sequence[str] | None = None) -> int:
    """Run the API process until a signal or the supervisor's death; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m dqueue.api")
    parser.add_argument("--config-json", required=True, help="resolved NodeConfig as JSON")
    args = parser.parse_args(argv)
    # Before the worker gateway's ROUTER exists: its routing ids must not be predictable.
    seeded = seed_libc_random()
    config = NodeConfig.from_json(args.config_json)
    configure_logging(config.id, "api", config.log_level, config.log_format)
    if not seeded:
        log_event(logger, logging.WARNING, "libc_random_not_seeded")
    # waitress warns on every request queued behind busy threads; saturation shows in the
    # request latency histogram instead.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    context = zmq.Context()
    endpoint = config.ipc_endpoint()
    registry = CollectorRegistry()
    draining = threading.Event()
    try:
        token_file = load_token_file(config)
    except TokenFileError as exc:
        log_event(logger, logging.CRITICAL, "tokens_file_invalid", error=str(exc))
        print(f"dqueue: {exc}", file=sys.stderr)
        return ApiExit.CANNOT_START  # the file stays malformed until fixed
    app = create_app(lambda: RaftClient(endpoint, context), config, registry, draining=draining,
                     token_file=token_file)
    threading.excepthook = _die_with_thread
    fd_limit = raise_fd_limit()
    try:
        server = HttpServer(app, config, draining, fd_limit=fd_limit)
    except OSError as exc:
        message = bind_failure_message("HTTP", config.http_addr, exc.strerror or str(exc))
        log_event(logger, logging.CRITICAL, "http_bind_failed", http_addr=config.http_addr,
                  error=message)
        print(f"dqueue: {message}", file=sys.stderr)
        return ApiExit.CANNOT_START  # the port stays taken
    try:
        gateway = WorkerGateway(config, registry)
    except PeerKeyError as exc:  # the Raft process refuses the same folder
        log_event(logger, logging.CRITICAL, "worker_keys_invalid", error=str(exc))
        print(f"dqueue: {exc}", file=sys.stderr)
        return ApiExit.CANNOT_START  # the folder stays wrong until fixed
    gateway_thread = threading.Thread(target=gateway.run, name="worker-gateway", daemon=True)
    gateway_thread.start()
    if not gateway.ready.wait(GATEWAY_START_S) or gateway.bind_error is not None:
        message = bind_failure_message("worker", config.worker_addr,
                                       gateway.bind_error or "the gateway did not start")
        log_event(logger, logging.CRITICAL, "worker_bind_failed",
                  worker_addr=config.worker_addr, error=message)
        print(f"dqueue: {message}", file=sys.stderr)
        return ApiExit.CANNOT_START  # the port stays taken
    http_thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    http_thread.start()
    log_event(logger, logging.INFO, "api_started", http_host=server.host, http_port=server.port,
              worker_addr=config.worker_addr, threads=config.http_threads, pid=os.getpid(),
              fd_limit=fd_limit)
    log_port_mode("http", f"{server.host}:{server.port}", http_mode(config, token_file))
    log_port_mode("worker", gateway.endpoint or config.worker_addr, gateway.security.policy.mode)
    log_port_mode("peer", config.raft_addr, key_port_mode(config))

    parent = os.getppid()
    while not stop.wait(PARENT_CHECK_S):
        if os.getppid() != parent:
            log_event(logger, logging.WARNING, "supervisor_gone")
            break
    log_event(logger, logging.INFO, "api_stopping")
    server.drain(config.drain_timeout_ms)
    gateway.stop()
    gateway_thread.join(GATEWAY_STOP_S)
    log_event(logger, logging.INFO, "api_stopped")
    return ApiExit.STOPPED


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Serving threads may still hold ZeroMQ sockets; leave without waiting on the context.
    os._exit(code)
