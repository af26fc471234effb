"""The data directory's lock: one holder, named by PID; released by the kernel on kill -9."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from dqueue.node.datadir_lock import LOCK_FILE, DataDirLock, DataDirLocked, lock_holder

_HOLDER = """
import os, sys, time
from dqueue.node.datadir_lock import DataDirLock
lock = DataDirLock(sys.argv[1])
child = os.fork() if len(sys.argv) > 2 else 1
if child == 0:  # a forked child that outlives its parent (no death signal here)
    os.write(1, b"forked\\n")  # after the lock's at-fork hooks ran here; one atomic write
    time.sleep(60)
    os._exit(0)
os.write(1, f"locked {child}\\n".encode())
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path):
    """A child process holding tmp_path's lock until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().split()[0] == "locked"  # blocks until it holds the lock
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_free_directory_is_locked_and_names_this_process(tmp_path):
    data_dir = str(tmp_path / "new")  # created by the lock
    assert lock_holder(data_dir) is None  # no lock file yet
    lock = DataDirLock(data_dir)
    assert lock.held
    with open(os.path.join(data_dir, LOCK_FILE)) as f:
        assert f.read().strip() == str(os.getpid())
    assert lock_holder(data_dir) == os.getpid()
    lock.release()
    lock.release()  # idempotent
    assert not lock.held
    assert lock_holder(data_dir) is None  # the PID left in the file means nothing unlocked
    DataDirLock(data_dir).release()


def test_second_holder_in_the_same_process_is_refused(tmp_path):
    lock = DataDirLock(str(tmp_path))
    with pytest.raises(DataDirLocked):
        DataDirLock(str(tmp_path))
    lock.release()


def test_another_process_holding_it_is_named_and_its_pid_is_left_alone(tmp_path, holder):
    with pytest.raises(DataDirLocked, match=f"in use by process {holder.pid} ") as info:
        DataDirLock(str(tmp_path))
    assert info.value.holder_pid == holder.pid
    assert lock_holder(str(tmp_path)) == holder.pid
    with open(tmp_path / LOCK_FILE) as f:
        assert f.read().strip() == str(holder.pid)  # the refused process wrote nothing


def test_kill_9_of_the_holder_leaves_no_stale_lock(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()  # the kernel closed its descriptors: the flock is gone
    assert lock_holder(str(tmp_path)) is None
    lock = DataDirLock(str(tmp_path))
    with open(tmp_path / LOCK_FILE) as f:
        assert f.read().strip() == str(os.getpid())
    lock.release()


def test_a_holder_with_an_unreadable_pid_is_still_refused(tmp_path, holder):
    with open(tmp_path / LOCK_FILE, "w") as f:
        f.write("garbage")  # truncates and rewrites; the holder's flock stays
    with pytest.raises(DataDirLocked, match="in use by another process"):
        DataDirLock(str(tmp_path))
    assert lock_holder(str(tmp_path)) == 0


def test_a_forked_child_does_not_keep_the_lock_after_its_parent_is_killed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), "fork"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = None
    try:
        # Both lines, in either order: the child has run its at-fork hooks.
        lines = sorted(proc.stdout.readline().split() for _ in range(2))
        assert lines[0] == ["forked"] and lines[1][0] == "locked"
        child = int(lines[1][1])
        assert lock_holder(str(tmp_path)) == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        os.kill(child, 0)  # still running, with its copy of the parent's descriptors
        assert lock_holder(str(tmp_path)) is None
        DataDirLock(str(tmp_path)).release()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
