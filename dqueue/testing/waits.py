"""Waiting on conditions with deadlines, and free loopback ports: the two helpers every test of
real processes needs, written once.

A test never sleeps a fixed time: it states the condition it waits for and the longest it may
take (``wait_for``), so it passes as soon as the condition holds and fails with a message naming
the condition when it never does, on a fast machine and on a loaded one alike.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Generous: on a loaded 2-core machine a node takes 10 to 15 s to start.
DEFAULT_TIMEOUT_S = 20.0


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports on ``host`` that were free a moment ago.

    The OS picks each (bind to port 0); every socket is held until all are drawn, so no two
    are the same. Another process may take one before the caller binds it; on loopback, with
    ports handed out in turn by the kernel, that does not happen in practice.
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (see ``free_ports``)."""
    return free_ports(1, host)[0]


def wait_until(condition: Callable[[], T], timeout_s: float, interval_s: float = 0.1) -> T:
    """Call ``condition`` until it returns a truthy value or ``timeout_s`` passes.

    For scripts and harnesses that report a failure themselves: returns the last value,
    falsy when the deadline passed (``wait_for`` raises instead).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)  # the polling interval of a deadline wait


def wait_for(
    condition: Callable[[], T | None],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    what: str = "condition",
    *,
    interval_s: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` until it returns a truthy value and return that value.

    Args:
        condition: Called at least once, then every ``interval_s`` until the deadline.
        timeout_s: The deadline, from now, in seconds.
        what: Names the condition in the failure message.
        interval_s: Pause between two calls (the polling interval of a deadline wait).
        ignore: Exceptions of ``condition`` that count as "not yet" (a node that does not
            answer yet, say); any other exception propagates at once.

    Raises:
        AssertionError: The condition did not hold within ``timeout_s``; the message names it
            and the last ignored exception.
    """
    last_error: BaseException | None = None

    def attempt() -> T | None:
        nonlocal last_error
        try:
            return condition()
        except ignore as exc:
            last_error = exc
            return None

    value = wait_until(attempt, timeout_s, interval_s)
    if value:
        return value
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}"
                         f" (last error: {last_error!r})")
