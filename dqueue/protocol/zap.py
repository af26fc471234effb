"""The ZAP handler of the peer port: who may complete a handshake, and as which member.

libzmq asks a ZAP handler (ZeroMQ RFC 27) bound at ``inproc://zeromq.zap.01`` in the socket's
context before it completes a handshake on a socket with a ZAP domain. The Raft process binds
that handler as a ROUTER (``ZapServer``) and answers it from its own poll loop, so no thread is
added to the single-threaded loop; the decision itself is the pure function ``decide``.

- With keys (``secure``), only the CURVE mechanism is admitted, and only with the public key of a
  configured member; the reply's User-Id is that member's id, which libzmq attaches to every
  message of the connection (``Frame.get("User-Id")``): the transport takes the sender from it.
- Without keys, only the NULL mechanism from a loopback address is admitted, with an empty
  User-Id (the sender is then the routing identity the connection claims).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq
from zmq.utils import z85

from dqueue.protocol.frames import recv_frames, send_frames

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_VERSION = b"1.0"
# The ZAP domain of the peer ROUTER (other sockets of the Raft process have none).
PEER_ZAP_DOMAIN = "dqueue-peer"
# A reply the handler cannot parse is dropped; libzmq then waits forever for that handshake,
# which only costs the peer its connection attempt. Bound the waiting requests per turn.
MAX_ZAP_PER_TURN = 256
CURVE_KEY_BYTES = 32


@dataclass(frozen=True)
class ZapRequest:
    """The fields of a ZAP request that the decision reads."""

    domain: str
    address: str
    mechanism: bytes
    credentials: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class ZapVerdict:
    """The answer to one ZAP request.

    Attributes:
        admitted: whether the handshake may complete.
        user_id: the member id (empty when admitted without keys, or when refused).
        reason: a short label for the refusal (a metric label), empty when admitted.
    """

    admitted: bool
    user_id: str = ""
    reason: str = ""

    @property
    def status_code(self) -> bytes:
        """The ZAP status code: 200 admitted, 400 refused."""
        return b"200" if self.admitted else b"400"


@dataclass(frozen=True)
class PeerPolicy:
    """Who may connect to the peer port.

    Attributes:
        secure: CURVE with member keys when True; NULL connections when False.
        any_address: without keys, admit NULL connections from any address (``--insecure``)
            rather than from loopback only.
        member_keys: Z85 public key -> member id (the members admitted).
        worker_keys: Z85 public key -> worker id (known, and refused on the peer port).
    """

    secure: bool
    any_address: bool = False
    member_keys: Mapping[bytes, str] = field(default_factory=dict)
    worker_keys: Mapping[bytes, str] = field(default_factory=dict)


def is_loopback(address: str) -> bool:
    """Whether a peer address (as ZAP reports it: an IP, maybe IPv4-mapped) is loopback."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def decide(policy: PeerPolicy, request: ZapRequest) -> ZapVerdict:
    """Admit or refuse one handshake on the peer port (pure: no I/O)."""
    return decide_handshake(
        request, domain=PEER_ZAP_DOMAIN, keyless=not policy.secure,
        any_address=policy.any_address, admitted=policy.member_keys,
        refused=policy.worker_keys, refused_reason="worker_key")


def decide_handshake(request: ZapRequest, *, domain: bytes, keyless: bool, any_address: bool,
                     admitted: Mapping[bytes, str], refused: Collection[bytes],
                     refused_reason: str) -> ZapVerdict:
    """The one admit/refuse rule of every ZAP-guarded port (pure: no I/O).

    Args:
        request: the handshake to judge.
        domain: the port's ZAP domain; any other is refused.
        keyless: the port has no keys: only NULL connections, and those only from loopback
            unless ``any_address``.
        any_address: keyless connections are admitted from any address (``--insecure``).
        admitted: z85 public key -> the id a CURVE connection with that key is known by.
        refused: keys refused with ``refused_reason`` (keys of the other kind of party).
        refused_reason: the reason counted for those.
    """
    if request.domain != domain:
        return ZapVerdict(False, reason="unknown_domain")
    if keyless:
        if request.mechanism != b"NULL":
            return ZapVerdict(False, reason="mechanism")
        if not (any_address or is_loopback(request.address)):
            return ZapVerdict(False, reason="not_loopback")
        return ZapVerdict(True)
    if request.mechanism != b"CURVE":
        return ZapVerdict(False, reason="mechanism")
    if len(request.credentials) != 1 or len(request.credentials[0]) != CURVE_KEY_BYTES:
        return ZapVerdict(False, reason="malformed")
    key = z85.encode(request.credentials[0])
    user_id = admitted.get(key)
    if user_id is not None:
        return ZapVerdict(True, user_id=user_id)
    if key in refused:
        return ZapVerdict(False, reason=refused_reason)
    return ZapVerdict(False, reason="unknown_key")


def parse_request(frames: Sequence[bytes]) -> tuple[bytes, ZapRequest] | None:
    """Split the frames after the envelope into ``(request id, request)``; None if malformed.

    Frames: version, request id, domain, address, identity, mechanism, credentials...
    """
    if len(frames) < 6 or frames[0] != ZAP_VERSION:
        return None
    request_id, domain, address, _identity, mechanism, *credentials = frames[1:]
    return request_id, ZapRequest(domain.decode("utf-8", "replace"),
                                  address.decode("utf-8", "replace"), mechanism,
                                  tuple(credentials))


class ZapServer:
    """The ZAP handler socket of one context, served from the owner's poll loop.

    It must be bound before any socket with a ZAP domain accepts a connection: a CURVE server
    without a handler would admit any client key.

    Args:
        context: the context of the sockets it guards.
        policy: who is admitted.
        decide_fn: the decision (``decide`` for the peer port; the worker gateway passes its
            own, ``dqueue.api.worker_auth.decide_worker``, with its own policy).
    """

    def __init__(self, context: zmq.Context, policy: Any,
                 decide_fn: Callable[[Any, ZapRequest], ZapVerdict] | None = None) -> None:
        self.policy = policy
        self._decide = decide_fn or decide
        self.admitted = 0
        # Refusals by reason (exported with the transport's other rejections).
        self.refused: dict[str, int] = {}
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(ZAP_ENDPOINT)

    def serve(self) -> int:
        """Answer every waiting request (up to MAX_ZAP_PER_TURN); return how many."""
        served = 0
        while served < MAX_ZAP_PER_TURN:
            try:
                frames = recv_frames(self.socket)
            except zmq.Again:
                break
            served += 1
            # Envelope: the routing id of libzmq's requester and an empty delimiter.
            if len(frames) < 3 or frames[1] != b"":
                continue
            parsed = parse_request(frames[2:])
            if parsed is None:
                continue
            request_id, request = parsed
            verdict = self._decide(self.policy, request)
            if verdict.admitted:
                self.admitted += 1
            else:
                self.refused[verdict.reason] = self.refused.get(verdict.reason, 0) + 1
            text = b"OK" if verdict.admitted else verdict.reason.encode()
            try:
                send_frames(self.socket, (frames[0], b"", ZAP_VERSION, request_id,
                                          verdict.status_code, text,
                                          verdict.user_id.encode(), b""))
            except zmq.Again:
                continue
        return served

    def close(self) -> None:
        """Close the socket."""
        self.socket.close(0)
