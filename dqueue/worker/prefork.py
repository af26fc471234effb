"""``dqueue-worker --pool processes``: N worker processes under one parent.

The parent runs no handler. It starts ``concurrency`` children, each a complete ``dqueue-worker``
with one handler thread and its own connection (so nothing is shared or pickled between
processes), forwards SIGTERM and SIGINT to each child by PID (the first drains them, a second
stops them at once, as for a single worker), and exits when all children have exited, with the
worst of their exit statuses.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger("dqueue.worker")

POLL_S = 0.1


def child_argv(argv: Sequence[str], index: int, worker_id: str, prefetch: int | None,
               same_id: bool = False) -> list[str]:
    """The command line of child ``index``: the parent's own, as a one-thread thread pool, with
    the id ``<worker_id>-<index>`` (``worker_id`` itself when ``same_id``)."""
    rest: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.lstrip("-").split("=", 1)[0]
        if name in ("pool", "concurrency", "worker-id", "prefetch") and token.startswith("-"):
            skip = "=" not in token
            continue
        rest.append(token)
    return [sys.executable, "-m", "dqueue.worker.main", *rest, "--pool", "threads",
            "--concurrency", "1", "--worker-id", worker_id if same_id else f"{worker_id}-{index}",
            "--prefetch", str(1 if prefetch is None else prefetch)]


class Prefork:
    """Starts and watches the child processes.

    Args:
        argv: The parent's arguments (normalized to double-dash long options).
        processes: How many children.
        worker_id: Base of the children's ids (``<id>-0``, ``<id>-1``...).
        prefetch: Tasks each child buffers beyond its running one (1 when None).
        same_id: every child uses ``worker_id`` itself (with worker keys, the key's name: the
            gateway accepts no other; the leases stay apart by their tokens).
    """

    def __init__(self, argv: Sequence[str], processes: int, worker_id: str,
                 prefetch: int | None, same_id: bool = False) -> None:
        self._argvs = [child_argv(argv, i, worker_id, prefetch, same_id)
                       for i in range(processes)]
        self._children: list[subprocess.Popen[bytes]] = []
        self._signals = 0

    def run(self) -> int:
        """Start the children and wait for all of them; returns the exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for argv in self._argvs:
            # Own process group: a terminal's Ctrl-C reaches the parent only, which passes it on.
            self._children.append(subprocess.Popen(argv, process_group=0))
        log.info("prefork: %d worker processes %s", len(self._children),
                 [child.pid for child in self._children])
        while any(child.poll() is None for child in self._children):
            time.sleep(POLL_S)  # the parent only waits; signals arrive in between
        codes = [child.returncode for child in self._children]
        return max((abs(code) for code in codes), default=0)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        log.info("prefork: signal %d (%s), passing it to the workers", signum,
                 "drain" if self._signals == 1 else "stop now")
        for child in self._children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
