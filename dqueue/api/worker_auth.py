"""Who may connect to the worker gateway: CURVE worker keys, or loopback only (protected mode).

The gateway's ROUTER has the ZAP domain ``dqueue-worker`` and its own ZAP handler, bound in the
gateway's own context (the peer port's handler lives in the Raft process's context; libzmq asks
the handler of the socket's context). The decision is the pure ``decide_worker``:

- ``authenticated`` (the node has a secure folder): the ROUTER is a CURVE server with the
  node's key pair, and only the CURVE mechanism with a key of ``<secure_dir>/workers/*.key``
  is admitted (a member's key is refused: members are not workers);
- ``protected`` (no secure folder, no ``--insecure``): NULL connections from loopback only;
- ``open`` (no secure folder, ``--insecure``): NULL connections from any address.

With worker keys, the name of the admitted key (``workers/<name>.key``) is the connection's ZAP
User-Id, which libzmq attaches to every message of it; ``recv_worker_message`` reads it, and
the gateway refuses a request whose ``worker_id`` is another (``worker_requests.check_worker_id``).

A refused worker sees a failed handshake (``EVENT_HANDSHAKE_FAILED_AUTH``, or ``_PROTOCOL``
for a mechanism the gateway does not speak), which ``dqueue.client.zmq_client`` reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import zmq

from dqueue.api.auth import PortMode
from dqueue.config import NodeConfig
from dqueue.keys import load_peer_keys
from dqueue.protocol.zap import ZapRequest, ZapVerdict, decide_handshake

WORKER_ZAP_DOMAIN = "dqueue-worker"


@dataclass(frozen=True)
class WorkerPolicy:
    """Who the worker gateway admits.

    Attributes:
        mode: authenticated (CURVE worker keys), protected (loopback) or open.
        worker_keys: Z85 public key -> worker id (authenticated mode).
        member_keys: Z85 public key -> member id (known, and refused on the gateway).
    """

    mode: PortMode
    worker_keys: Mapping[bytes, str] = field(default_factory=dict)
    member_keys: Mapping[bytes, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewaySecurity:
    """The gateway's policy and, in authenticated mode, the node's CURVE key pair (Z85)."""

    policy: WorkerPolicy
    public_key: bytes = b""
    secret_key: bytes = field(default=b"", repr=False)


def key_port_mode(config: NodeConfig) -> PortMode:
    """The mode of a port guarded by CURVE keys (the worker gateway, and the peer port, whose
    transport applies the same rule: ``dqueue/node/transport.py``)."""
    if config.secure_dir:
        return PortMode.AUTHENTICATED
    return PortMode.OPEN if config.insecure else PortMode.PROTECTED


def gateway_security(config: NodeConfig) -> GatewaySecurity:
    """The worker gateway's security from the node's configuration.

    Raises:
        PeerKeyError: the secure folder's keys are missing or malformed.
    """
    mode = key_port_mode(config)
    if mode is not PortMode.AUTHENTICATED:
        return GatewaySecurity(WorkerPolicy(mode))
    keys = load_peer_keys(config.secure_dir, config.id, sorted(config.members()))
    policy = WorkerPolicy(PortMode.AUTHENTICATED,
                          worker_keys={k: w for w, k in keys.workers.items()},
                          member_keys={k: m for m, k in keys.members.items()})
    return GatewaySecurity(policy, keys.public_key, keys.secret_key)


def decide_worker(policy: WorkerPolicy, request: ZapRequest) -> ZapVerdict:
    """Admit or refuse one handshake on the worker gateway (pure: no I/O)."""
    return decide_handshake(
        request, domain=WORKER_ZAP_DOMAIN, keyless=policy.mode is not PortMode.AUTHENTICATED,
        any_address=policy.mode is not PortMode.PROTECTED, admitted=policy.worker_keys,
        refused=policy.member_keys, refused_reason="member_key")


def recv_worker_message(router: zmq.Socket) -> tuple[list[bytes], str]:
    """Receive one whole message on the gateway's ROUTER without blocking, with the name of the
    worker key its connection was admitted with ("" when it has none: no worker keys).

    Raises:
        zmq.Again: nothing is waiting.
    """
    frame = router.recv(zmq.NOBLOCK, copy=False)
    try:
        worker_name = frame.get("User-Id")
    except zmq.ZMQError:  # no User-Id: a NULL connection
        worker_name = ""
    frames = [frame.bytes]
    while frame.more:
        frame = router.recv(zmq.NOBLOCK, copy=False)
        frames.append(frame.bytes)
    return frames, worker_name if isinstance(worker_name, str) else ""
