"""Helpers for testing with dqueue, shipped with the package for users and for dqueue's own tests.

- ``LocalQueue``: the real queue state machine behind the SDK client's interface, in process,
  to test producers and task handlers without a server (docs/sdk.md).
- ``wait_for`` and ``free_port``: wait on a condition with a deadline; a free loopback port.
- ``dqueue.testing.cluster``: real nodes and clusters on 127.0.0.1 (imported on its own: it
  starts processes).
"""

from dqueue.testing.local_queue import LocalQueue, ManualClock
from dqueue.testing.waits import free_port, wait_for

__all__ = ["LocalQueue", "ManualClock", "free_port", "wait_for"]
