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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS picks it: bind to port 0).

    Another process may take it before the caller binds it; on loopback, with ports handed out
    in turn by the kernel, that does not happen in practice.
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignore as exc:
            last_error, value = exc, None
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}"
                         f" (last error: {last_error!r})")
