"""The message kinds of every ZeroMQ channel, one enum per channel.

A kind is the second frame of a ``wire`` message. The members are ``bytes`` (they compare and hash
like the frame itself), so a decoded kind can be looked up directly; a kind that is not a member
of its channel's enum is refused where the channel's messages are decoded (``peer``, ``ipc``,
``worker``). The byte values are the wire format: changing one breaks every older peer.
"""

from __future__ import annotations

from enum import Enum


class PeerKind(bytes, Enum):
    """Between the Raft processes of the nodes (``dqueue/node/transport.py``)."""

    RAFT = b"raft"  # a Raft message (``dqueue.raft.message_to_plain``)
    HELLO = b"hello"  # this node's HTTP address, for leader hints
    FWD = b"fwd"  # a command forwarded to the leader
    FWD_RES = b"fwd_res"  # the leader's answer to a forwarded command


class IpcKind(bytes, Enum):
    """Between the API process (and its worker gateway) and the local Raft process."""

    CMD = b"cmd"  # propose a command
    READ = b"read"  # run a read query
    RES = b"res"  # the answer: ``outcome`` of a command, ``value`` of a read
    ERR = b"err"  # the request failed (``ErrorCode``), with a leader hint


class WorkerKind(bytes, Enum):
    """Between a worker and the worker gateway (docs/worker-protocol.md)."""

    # Requests, from the worker.
    LEASE = b"lease"
    ACK = b"ack"
    ACK_MANY = b"ack_many"
    NACK = b"nack"
    EXTEND = b"extend"
    RELEASE = b"release"  # hand a leased task back unstarted: no attempt counted
    HEARTBEAT = b"heartbeat"  # the worker is alive: the workers table (GET /workers)
    PING = b"ping"
    BYE = b"bye"
    ENQUEUE = b"enqueue"  # a producer's task (dqueue/api/gateway_producer.py)
    ENQUEUE_BATCH = b"enqueue_batch"  # 1 to 1,000 tasks of a producer, one command
    # Replies, from the gateway.
    TASKS = b"tasks"
    RES = b"res"
    ACKED = b"acked"
    ENQUEUED = b"enqueued"  # answer to enqueue and enqueue_batch, once committed
    PONG = b"pong"
    ERR = b"err"


WORKER_REQUESTS = frozenset({WorkerKind.LEASE, WorkerKind.ACK, WorkerKind.ACK_MANY,
                             WorkerKind.NACK, WorkerKind.EXTEND, WorkerKind.RELEASE,
                             WorkerKind.HEARTBEAT, WorkerKind.PING, WorkerKind.BYE,
                             WorkerKind.ENQUEUE, WorkerKind.ENQUEUE_BATCH})
PRODUCER_REQUESTS = frozenset({WorkerKind.ENQUEUE, WorkerKind.ENQUEUE_BATCH})
