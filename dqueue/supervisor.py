"""``bin/dqueue``: one node = a supervisor, its Raft process and its API process.

The supervisor resolves the configuration (flags > TOML file > defaults; impossible settings are
refused with the key named, exit status 2), spawns ``python -m dqueue.node`` and
``python -m dqueue.api`` with the configuration as JSON, and then:

- restarts the API process when it dies (with a growing delay, reset after it ran a while),
  except when it cannot start with this node's settings (``ApiExit.CANNOT_START``, 78: its HTTP
  or worker port is taken, its tokens file is malformed, its worker keys do not load): then the
  node stops with status 1, since a restart would meet the same;
- exits non-zero when the Raft process dies, after stopping the API process, so that systemd
  or the cluster script restarts the whole node; except when the Raft process exits with status
  2 (a corrupt store, or a committed entry it cannot apply): a restart would fail the same way,
  so the supervisor exits with status 2 too, which the systemd unit does not restart
  (``RestartPreventExitStatus=2``), and says so on stderr;
- on SIGTERM or SIGINT stops gracefully: first the API process (no new requests, those in
  flight finish), then the Raft process (hands leadership over, exits).

Children run in their own process group (a terminal's Ctrl-C reaches only the supervisor, which
orders the stop) and get SIGTERM from the kernel if the supervisor itself dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from dqueue.config import ConfigError, InsecurePeersError, NodeConfig
from dqueue.config_loader import load_config
from dqueue.exit_status import ApiExit, NodeExit, RaftExit
from dqueue.logs import configure_logging, log_event
from dqueue.node.datadir_lock import DataDirLocked, lock_holder
from dqueue.node.join import start_probe
from dqueue.tokens import TokenFileError, read_tokens, tokens_path

logger = logging.getLogger("dqueue.supervisor")

RAFT = "raft"
API = "api"
# Poll period of the supervision loop.
POLL_S = 0.05
# API restart delay: doubles from the first value up to the cap; back to the first value once
# the process has run for RESTART_RESET_S.
RESTART_FIRST_S = 0.2
RESTART_CAP_S = 5.0
RESTART_RESET_S = 10.0
# Extra time given to a child after its own deadline before it is killed.
STOP_GRACE_S = 2.0
# Time the Raft process gets to hand leadership over and exit.
RAFT_STOP_S = 15.0
_PR_SET_PDEATHSIG = 1


def child_command(module: str, config: NodeConfig) -> list[str]:
    """The command line of a child process."""
    return [sys.executable, "-m", module, "--config-json", config.to_json()]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the API process also watches its parent id


class Supervisor:
    """Runs and watches the two processes of one node.

    Args:
        config: the resolved configuration.
        commands: process name (``raft``, ``api``) -> command line.
    """

    def __init__(self, config: NodeConfig, commands: dict[str, list[str]]) -> None:
        self._config = config
        self._commands = commands
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._restart_delay_s = RESTART_FIRST_S
        self._restart_at: float | None = None
        self.api_restarts = 0

    def request_stop(self) -> None:
        """Ask ``run`` to stop the node gracefully (signal-safe)."""
        self._stop.set()

    def _start(self, name: str) -> None:
        proc = subprocess.Popen(
            self._commands[name], process_group=0, preexec_fn=_die_with_parent
        )
        self._procs[name] = proc
        self._started_at[name] = time.monotonic()
        log_event(logger, logging.INFO, "process_started", process_name=name, pid=proc.pid)

    def run(self) -> int:
        """Start both processes and supervise them; return the node's exit status."""
        self._start(RAFT)
        self._start(API)
        while not self._stop.wait(POLL_S):
            raft_code = self._procs[RAFT].poll()
            if raft_code is not None:
                log_event(logger, logging.ERROR, "raft_process_died", exit_code=raft_code)
                self._stop_child(API, self._config.drain_timeout_ms / 1000)
                if raft_code == RaftExit.HALTED:
                    log_event(logger, logging.CRITICAL, "node_halted", exit_code=raft_code)
                    print("dqueue: the Raft process stopped on an error that a restart would "
                          "meet again (its message is above); not restarting", file=sys.stderr)
                    return NodeExit.OPERATOR_NEEDED
                return raft_code or NodeExit.FAILED
            if self._watch_api() == ApiExit.CANNOT_START:
                # A port in use stays in use, a bad file stays bad: stop the node instead of a
                # restart loop.
                log_event(logger, logging.CRITICAL, "node_start_failed",
                          reason="api_cannot_start")
                self._stop_child(RAFT, RAFT_STOP_S)
                return NodeExit.FAILED
        log_event(logger, logging.INFO, "node_stopping")
        self._stop_child(API, self._config.drain_timeout_ms / 1000)
        raft_code = self._stop_child(RAFT, RAFT_STOP_S)
        log_event(logger, logging.INFO, "node_stopped", raft_exit_code=raft_code)
        return NodeExit.STOPPED if raft_code == RaftExit.STOPPED else NodeExit.FAILED

    def _watch_api(self) -> int | None:
        """Restart the API process when it died; return its exit status when it did."""
        now = time.monotonic()
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart_at = None
                self.api_restarts += 1
                self._start(API)
            return None
        code = self._procs[API].poll()
        if code is None:
            return None
        if code == ApiExit.CANNOT_START:
            log_event(logger, logging.ERROR, "api_process_died", exit_code=code)
            return code
        if now - self._started_at[API] >= RESTART_RESET_S:
            self._restart_delay_s = RESTART_FIRST_S
        log_event(logger, logging.ERROR, "api_process_died", exit_code=code,
                  restart_in_s=self._restart_delay_s)
        self._restart_at = now + self._restart_delay_s
        self._restart_delay_s = min(self._restart_delay_s * 2, RESTART_CAP_S)
        return code

    def _stop_child(self, name: str, timeout_s: float) -> int | None:
        """SIGTERM one child, wait for it, SIGKILL it past the deadline; return its status."""
        proc = self._procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s + STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log_event(logger, logging.WARNING, "process_killed", process_name=name)
                proc.kill()
                proc.wait()
        log_event(logger, logging.INFO, "process_stopped", process_name=name,
                  exit_code=proc.returncode)
        return proc.returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bin/dqueue``."""
    try:
        config = load_config(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"dqueue: configuration error: {exc.key}: {exc.message}", file=sys.stderr)
        # Non-loopback peers without keys: status 1, as the Raft process refuses them.
        return NodeExit.FAILED if isinstance(exc, InsecurePeersError) else NodeExit.OPERATOR_NEEDED
    if config.secure_dir:
        try:  # the API process refuses it too; here the node fails before starting anything
            read_tokens(tokens_path(config.secure_dir))
        except TokenFileError as exc:
            print(f"dqueue: configuration error: secure_dir: {exc}", file=sys.stderr)
            return NodeExit.OPERATOR_NEEDED
    configure_logging(config.id, "supervisor", config.log_level, config.log_format)
    try:
        os.makedirs(config.data_dir, exist_ok=True)
    except OSError as exc:
        print(f"dqueue: configuration error: data_dir: {exc.strerror}", file=sys.stderr)
        return NodeExit.OPERATOR_NEEDED
    # Checked here too, so that a second node on a data directory in use starts no API process
    # and exits at once; the Raft process takes the lock for real (datadir_lock.py) and exits 1
    # the same way if it lost a race, which ends this supervisor too (no restart).
    holder_pid = lock_holder(config.data_dir)
    if holder_pid is not None:
        locked = DataDirLocked(config.data_dir, holder_pid or None)
        log_event(logger, logging.CRITICAL, "data_dir_locked", error=str(locked),
                  holder_pid=locked.holder_pid)
        print(f"dqueue: {locked}", file=sys.stderr)
        return NodeExit.FAILED
    supervisor = Supervisor(config, {
        RAFT: child_command("dqueue.node", config),
        API: child_command("dqueue.api", config),
    })
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: supervisor.request_stop())
    log_event(logger, logging.INFO, "node_starting", data_dir=os.path.abspath(config.data_dir),
              http_addr=config.http_addr, raft_addr=config.raft_addr,
              members=config.members(), pid=os.getpid())
    start_probe(config, threading.Event())  # --join: log the cluster it waits for (join.py)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
