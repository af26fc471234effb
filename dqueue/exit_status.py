"""The exit statuses of a node's three processes, in one place.

The supervisor (``bin/dqueue``) decides from its children's statuses whether to restart the API
process, stop the node, or stop it for good; systemd decides from the supervisor's status
whether to restart the node (``RestartPreventExitStatus=2``). ``docs/operations.md`` has the
table for operators.
"""

from __future__ import annotations

from enum import IntEnum


class NodeExit(IntEnum):
    """The supervisor's status: the node's, as systemd and the cluster script see it."""

    STOPPED = 0
    # The node did not start or stopped on a failure a restart may cure: a port in use, the data
    # directory locked by another node, non-loopback peers without keys, a Raft process that died.
    FAILED = 1
    # A restart would fail the same way until an operator acts: the configuration is refused, or
    # the Raft process halted (a corrupt store, a committed entry it cannot apply). systemd does
    # not restart it.
    OPERATOR_NEEDED = 2


class RaftExit(IntEnum):
    """The Raft process's status (``python -m dqueue.node``)."""

    STOPPED = 0
    # It refused to start: a bad configuration, peer keys that do not load, an address that cannot
    # be bound, the data directory held by another process. The node stops with FAILED.
    REFUSED_TO_START = 1
    # The store is corrupt or a committed entry cannot be applied: the node stops with
    # OPERATOR_NEEDED.
    HALTED = 2


class ApiExit(IntEnum):
    """The API process's status (``python -m dqueue.api``)."""

    STOPPED = 0
    # A thread died of an exception (sysexits' EX_SOFTWARE): the supervisor restarts the process.
    THREAD_DIED = 70
    # It cannot start with this node's settings and a restart would meet the same (sysexits'
    # EX_CONFIG): its HTTP or worker port is in use, the tokens file is malformed, the worker
    # keys do not load. The supervisor does not restart it; it stops the node with FAILED.
    CANNOT_START = 78
