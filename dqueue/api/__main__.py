"""The API process: ``python -m dqueue.api --config-json JSON`` (started by the supervisor).

Serves the HTTP API with waitress and runs the ZeroMQ worker gateway on its own thread. SIGTERM
or SIGINT drain it: no new connections, requests in flight finish, then it exits 0. It also
stops when its parent (the supervisor) is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
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
from dqueue.config import NodeConfig
from dqueue.logs import configure_logging, log_event
from dqueue.node.ipc_client import RaftClient
from dqueue.tokens import TokenFileError

logger = logging.getLogger("dqueue.api")

# How often the main thread checks that the supervisor is still there.
PARENT_CHECK_S = 0.5
# How long the worker gateway may take to return after stop().
GATEWAY_STOP_S = 2.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the API process until a signal or the supervisor's death; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m dqueue.api")
    parser.add_argument("--config-json", required=True, help="resolved NodeConfig as JSON")
    args = parser.parse_args(argv)
    config = NodeConfig.from_json(args.config_json)
    configure_logging(config.id, "api", config.log_level, config.log_format)
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
        return 1
    app = create_app(lambda: RaftClient(endpoint, context), config, registry, draining=draining,
                     token_file=token_file)
    try:
        server = HttpServer(app, config, draining)
    except OSError as exc:
        log_event(logger, logging.ERROR, "http_bind_failed", http_addr=config.http_addr,
                  error=str(exc))
        return 1
    gateway = WorkerGateway(config, registry)
    gateway_thread = threading.Thread(target=gateway.run, name="worker-gateway", daemon=True)
    gateway_thread.start()
    http_thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    http_thread.start()
    log_event(logger, logging.INFO, "api_started", http_host=server.host, http_port=server.port,
              worker_addr=config.worker_addr, threads=config.http_threads, pid=os.getpid())
    log_port_mode("http", f"{server.host}:{server.port}", http_mode(config, token_file))

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
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Serving threads may still hold ZeroMQ sockets; leave without waiting on the context.
    os._exit(code)
