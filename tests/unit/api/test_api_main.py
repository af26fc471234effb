"""The API process's entry point: a thread that dies ends the process (exit 70) and says so."""

from __future__ import annotations

import subprocess
import sys

from dqueue.api.__main__ import EXIT_THREAD_DIED, raise_fd_limit

DYING_THREAD = """
import threading, time
from dqueue.api import __main__ as api_main
from dqueue.logs import configure_logging
configure_logging("n1", "api", "info", "json")
threading.excepthook = api_main._die_with_thread
threading.Thread(target=lambda: 1 / 0, name="worker-gateway").start()
time.sleep(30)  # the hook ends the process long before
"""


def test_a_thread_that_dies_takes_the_process_down_and_logs_it():
    done = subprocess.run([sys.executable, "-c", DYING_THREAD], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == EXIT_THREAD_DIED
    assert "thread_died" in done.stderr + done.stdout
    assert "worker-gateway" in done.stderr + done.stdout


def test_raise_fd_limit_reaches_the_hard_limit():
    import resource

    soft = raise_fd_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard == resource.RLIM_INFINITY or soft == hard
