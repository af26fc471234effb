"""An exclusive lock on a node's data directory: one process at a time may use its store.

LMDB itself lets several processes open one environment, and two Raft processes on one data
directory would each believe they own the member's log and vote: each could vote in the same
term, or overwrite entries the other acknowledged. The process that opens the store (the Raft
process, or an offline ``--repair``) therefore first takes ``flock(LOCK_EX | LOCK_NB)`` on
``<data-dir>/LOCK`` and writes its PID into the file. A second process finds the lock taken and
refuses to start, naming that PID. The kernel releases a ``flock`` when the last descriptor of
its open file is closed, so a process killed with ``kill -9`` leaves no stale lock: the PID
written in the file is only a hint for the message, never a reason to refuse.
"""

from __future__ import annotations

import fcntl
import os
import weakref
from collections.abc import Callable

LOCK_FILE = "LOCK"


class DataDirLocked(Exception):
    """Another process holds the data directory's lock.

    Attributes:
        data_dir: the locked directory.
        holder_pid: the PID written in the lock file by its holder (None if unreadable).
    """

    def __init__(self, data_dir: str, holder_pid: int | None) -> None:
        holder = f"process {holder_pid}" if holder_pid is not None else "another process"
        super().__init__(
            f"data directory {data_dir} is in use by {holder} (it holds "
            f"{os.path.join(data_dir, LOCK_FILE)}); refusing to start a second node on it. "
            "Stop that process first, or give this node its own --data-dir")
        self.data_dir = data_dir
        self.holder_pid = holder_pid


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class DataDirLock:
    """The held lock of one data directory; ``release`` (or process exit) frees it.

    Args:
        data_dir: the node's data directory (created if missing).

    Raises:
        DataDirLocked: another process holds it.
    """

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, LOCK_FILE)
        # O_CLOEXEC: a process started from this one (exec) does not inherit the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DataDirLocked(data_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        # Only the holder writes: a refused process never touches the file's content.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd: int | None = fd
        # A forked child (the snapshot child) closes its copy at once: a flock lives until the
        # last descriptor of its open file closes, and a child still running after this process
        # was killed must not keep a new node out.
        os.register_at_fork(after_in_child=_closer_in_child(weakref.ref(self)))

    @property
    def held(self) -> bool:
        """True until ``release``."""
        return self._fd is not None

    def release(self) -> None:
        """Free the lock (idempotent). The PID stays in the file; it means nothing unlocked."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock


def _closer_in_child(ref: weakref.ref[DataDirLock]) -> Callable[[], None]:
    def close_in_child() -> None:
        lock = ref()
        if lock is not None and lock._fd is not None:
            fd, lock._fd = lock._fd, None
            os.close(fd)  # the parent's descriptor still holds the lock
    return close_in_child


def lock_holder(data_dir: str) -> int | None:
    """Return the PID holding ``data_dir``'s lock, or None when it is free (or has no lock file).

    For a supervisor's check before it starts anything: it takes the lock for an instant and
    gives it back, so the answer may be stale by the time it returns; the process that opens
    the store takes the lock for real and refuses then. A lock held by a process whose PID is
    unreadable is reported as PID 0.
    """
    path = os.path.join(data_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        return holder if holder is not None else 0
    finally:
        os.close(fd)  # also drops the shared lock taken when the directory was free
    return None
