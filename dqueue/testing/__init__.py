"""Helpers for testing with dqueue, shipped with the package for users and for dqueue's own tests.

- ``LocalQueue`` (and ``ManualClock``): the real queue state machine behind the SDK client's
  interface, in process, to test producers and task handlers without a server (docs/sdk.md).
- ``wait_for`` (``wait_until``) and ``free_port`` (``free_ports``): wait on a condition with a
  deadline; free loopback ports.
- ``dqueue.testing.cluster``: real nodes and clusters on 127.0.0.1, built on
  ``dqueue.testing.processes`` (how a node process is started and signalled, by PID).

``LocalQueue`` is imported on first use, so that the process helpers (stdlib only) load
without the SDK, the worker runtime and ZeroMQ: the chaos harness uses them as root inside
network namespaces.
"""

from __future__ import annotations

from typing import Any

from dqueue.testing.waits import free_port, free_ports, wait_for, wait_until

__all__ = ["LocalQueue", "ManualClock", "free_port", "free_ports", "wait_for", "wait_until"]


def __getattr__(name: str) -> Any:
    if name in ("LocalQueue", "ManualClock"):
        from dqueue.testing import local_queue

        return getattr(local_queue, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
