"""Snapshots of the queue state taken in a forked child, so that the loop never stalls on them.

Serializing a large queue state takes hundreds of milliseconds of CPU. Done inside the loop, it
would delay heartbeats for that long on every member at once (they all reach the snapshot
point together) and can make followers campaign against a healthy leader. ``os.fork`` gives the
child a copy-on-write image of the state exactly as applied at that moment; the child serializes
it into a file and exits, and the loop picks the bytes up when the child is done, stores them in
LMDB (one synced transaction) and compacts the log. The child touches no socket and no LMDB
handle, and leaves with ``os._exit`` so that nothing inherited is closed or flushed twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from dqueue.logs import log_event

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h
TMP_PREFIX = "snapshot."
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class TakenSnapshot:
    """A finished snapshot: the state as applied at ``index`` (whose entry has ``term``)."""

    index: int
    term: int
    data: bytes
    ms: float


class Snapshotter:
    """Runs at most one snapshot child at a time.

    Args:
        data_dir: the node's data directory (each child writes its own
            ``snapshot.<index>.<ns>.tmp`` there).
        use_fork: serialize in a forked child; False serializes inline (tests, other systems).
    """

    def __init__(self, data_dir: str, use_fork: bool = hasattr(os, "fork")) -> None:
        self.data_dir = data_dir
        self.use_fork = use_fork
        self._job: tuple[int, int, int, float, str] | None = None  # pid, index, term, t0, path
        self._inline: TakenSnapshot | None = None
        for name in os.listdir(data_dir):
            if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
                os.unlink(os.path.join(data_dir, name))  # left by a node killed mid-snapshot

    @property
    def busy(self) -> bool:
        """Whether a snapshot is being taken."""
        return self._job is not None or self._inline is not None

    def start(self, index: int, term: int, serialize: Callable[[], bytes]) -> None:
        """Begin a snapshot of the state as it is now (applied up to ``index``)."""
        started = time.monotonic()
        if not self.use_fork:
            data = serialize()
            self._inline = TakenSnapshot(index, term, data, (time.monotonic() - started) * 1000)
            return
        # A file per child: one orphaned by a killed node never shares a path with a new one.
        path = os.path.join(self.data_dir, f"{TMP_PREFIX}{index}.{time.time_ns()}{TMP_SUFFIX}")
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: serialize, write, leave without any cleanup
            status = 1
            try:
                _die_with_parent(parent)
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)  # the parent's stop handler is not ours
                data = serialize()
                with open(path, "wb") as fh:
                    fh.write(data)
                status = 0
            finally:
                os._exit(status)
        self._job = (pid, index, term, started, path)

    def poll(self) -> TakenSnapshot | None:
        """Return the finished snapshot once, or None while running (or after a failure)."""
        if self._inline is not None:
            taken, self._inline = self._inline, None
            return taken
        if self._job is None:
            return None
        pid, index, term, started, path = self._job
        done_pid, status = os.waitpid(pid, os.WNOHANG)
        if done_pid == 0:
            return None
        self._job = None
        if os.waitstatus_to_exitcode(status) != 0:
            log_event(logger, logging.ERROR, "snapshot_child_failed", index=index, status=status)
            if os.path.exists(path):
                os.unlink(path)
            return None
        with open(path, "rb") as fh:
            data = fh.read()
        os.unlink(path)
        return TakenSnapshot(index, term, data, (time.monotonic() - started) * 1000)

    def close(self) -> None:
        """Stop a running child (at exit)."""
        if self._job is not None:
            pid, path = self._job[0], self._job[4]
            self._job = None
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _die_with_parent(parent: int) -> None:
    """In the child: be killed when the node dies (Linux), so no orphan outlives a kill -9."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the node died before prctl took effect
        os._exit(1)
