"""Entry point of the Raft process: ``python -m dqueue.node --config-json '<NodeConfig JSON>'``.

Started by the node supervisor (``bin/dqueue``) with the resolved configuration. Exit status
(``RaftExit``, ``dqueue/exit_status.py``): 0 after a clean stop (SIGTERM or SIGINT, with
leadership transfer when this node leads), 2 when the store is corrupt (the message names the
bad record) or a committed entry cannot be applied (the message names its index, the item and
the cause), 1 on a bad configuration (including an address that cannot be bound) and when
another process holds the data directory (the message names its PID; nothing of the directory
was touched).
"""

from __future__ import annotations

import argparse
import logging
import sys

import zmq

from dqueue.config import ConfigError, NodeConfig, check_peer_security
from dqueue.exit_status import RaftExit
from dqueue.keys import PeerKeyError
from dqueue.logs import configure_logging, log_event
from dqueue.node.apply_failed import ApplyFailed
from dqueue.node.datadir_lock import DataDirLocked
from dqueue.node.member_marker import ForgottenMember
from dqueue.node.process import RaftProcess
from dqueue.node.repair import RepairRefused
from dqueue.node.store import CorruptRecord
from dqueue.port_holder import bind_failure_message
from dqueue.zmq_seed import seed_libc_random

logger = logging.getLogger("dqueue.node")



def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the Raft process and run it until it is stopped."""
    parser = argparse.ArgumentParser(prog="python -m dqueue.node",
                                     description="Run the Raft process of one dqueue node.")
    parser.add_argument("--config-json", required=True, help="the resolved NodeConfig as JSON")
    args = parser.parse_args(argv)
    # Before the peer and IPC ROUTERs exist: their routing ids must not be predictable.
    seeded = seed_libc_random()
    try:
        config = NodeConfig.from_json(args.config_json)
    except (ValueError, TypeError) as exc:
        print(f"dqueue.node: bad --config-json: {exc}", file=sys.stderr)
        return RaftExit.REFUSED_TO_START
    configure_logging(config.id, "raft", config.log_level, config.log_format)
    if not seeded:
        log_event(logger, logging.WARNING, "libc_random_not_seeded")
    try:
        # Checked by the supervisor already; again here for a Raft process started alone.
        check_peer_security(config)
        process = RaftProcess(config)
    except (ConfigError, PeerKeyError) as exc:
        log_event(logger, logging.CRITICAL, "peer_security_refused", error=str(exc))
        print(f"dqueue.node: {exc}", file=sys.stderr)
        return RaftExit.REFUSED_TO_START
    except DataDirLocked as exc:
        log_event(logger, logging.CRITICAL, "data_dir_locked", error=str(exc),
                  holder_pid=exc.holder_pid)
        print(f"dqueue.node: {exc}", file=sys.stderr)
        return RaftExit.REFUSED_TO_START
    except CorruptRecord as exc:
        log_event(logger, logging.CRITICAL, "store_corrupt", error=str(exc), index=exc.index)
        print(f"dqueue.node: {exc}", file=sys.stderr)
        return RaftExit.HALTED
    except RepairRefused as exc:
        log_event(logger, logging.CRITICAL, "repair_refused", error=str(exc))
        print(f"dqueue.node: {exc}", file=sys.stderr)
        return RaftExit.HALTED
    except ForgottenMember as exc:
        log_event(logger, logging.CRITICAL, "forgotten_member", error=str(exc))
        print(f"dqueue.node: {exc}", file=sys.stderr)
        return RaftExit.REFUSED_TO_START
    except zmq.ZMQError as exc:  # a port in use, an IPC path too long for a socket name
        log_event(logger, logging.CRITICAL, "bind_failed", error=str(exc),
                  raft_addr=config.raft_addr, ipc=config.ipc_endpoint())
        if exc.errno == zmq.EADDRINUSE:  # the IPC path is unlinked first: the TCP port
            message = bind_failure_message("raft", config.raft_addr, str(exc))
        else:
            message = f"cannot bind {config.raft_addr} or {config.ipc_endpoint()}: {exc}"
        print(f"dqueue.node: {message}", file=sys.stderr)
        return RaftExit.REFUSED_TO_START
    process.install_signal_handlers()
    try:
        return process.run()
    except ApplyFailed as exc:  # the loop closed the sockets and the store on its way out
        log_event(logger, logging.CRITICAL, "apply_failed", error=str(exc), index=exc.index,
                  position=exc.position, cause=exc.cause)
        print(f"dqueue.node: {exc}", file=sys.stderr)
        return RaftExit.HALTED


if __name__ == "__main__":
    sys.exit(main())
