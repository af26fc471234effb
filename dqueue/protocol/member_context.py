"""The context of a member: the bytes the node attaches to a member it adds to the cluster.

The Raft core keeps a member's context opaque (``dqueue.raft.ConfChange.context``, at most
4 KiB) and replicates it with the configuration, so every member learns where a new member
listens and, in secure mode, which public key it holds. The node defines the bytes here, once:
JSON ``{"raft_addr": "host:port", "http_addr": "host:port", "public_key": "<z85>"}``
(``public_key`` only for clusters with keys), UTF-8, keys sorted.

The bytes come from the log, hence from the network: ``decode_context`` checks every field
and raises ``ValueError`` (and nothing else) on anything that is not a context this module
would write. The admin API checks the same fields with ``member_context`` before anything is
proposed, so a bad field is a 400 naming it and never reaches the log.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# A member id: what the configuration (``--peers``) and the admin API accept.
MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A host:port address; the host is a name or an IPv4 or bracketed IPv6 address.
_ADDRESS = re.compile(r"(?:[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}")
# A CURVE public key in Z85 text (32 bytes).
_Z85_KEY = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")
MAX_CONTEXT_BYTES = 4_096
_KEYS = frozenset({"raft_addr", "http_addr", "public_key"})


@dataclass(frozen=True, slots=True)
class MemberContext:
    """Where a member listens and the key it holds.

    Attributes:
        raft_addr: its peer transport address (``host:port``, a host others can reach).
        http_addr: its HTTP API address (for leader hints and ``GET /cluster``).
        public_key: its CURVE public key in Z85 text; None in a cluster without keys.
    """

    raft_addr: str
    http_addr: str
    public_key: str | None = None


def is_member_id(value: Any) -> bool:
    """Whether ``value`` is a valid member id (1 to 64 letters, digits, ``_ . -``)."""
    return type(value) is str and MEMBER_ID.fullmatch(value) is not None


def check_address(value: Any, name: str) -> str:
    """``value`` when it is a ``host:port`` address with a port in 1..65535.

    Raises:
        ValueError: naming ``name``.
    """
    if type(value) is not str or _ADDRESS.fullmatch(value) is None:
        raise ValueError(f"{name}: expected host:port")
    if not 0 < int(value.rpartition(":")[2]) < 65536:
        raise ValueError(f"{name}: port must be 1 to 65535")
    return value


def check_public_key(value: Any, name: str = "public_key") -> str:
    """``value`` when it is a Z85 CURVE public key (40 characters).

    Raises:
        ValueError: naming ``name``.
    """
    if type(value) is not str or _Z85_KEY.fullmatch(value) is None:
        raise ValueError(f"{name}: expected a CURVE public key, 40 Z85 characters")
    return value


def member_context(raft_addr: Any, http_addr: Any, public_key: Any = None) -> MemberContext:
    """A context from untrusted values (an HTTP body, a decoded log entry).

    Raises:
        ValueError: naming the first bad field.
    """
    return MemberContext(check_address(raft_addr, "raft_addr"),
                         check_address(http_addr, "http_addr"),
                         None if public_key is None else check_public_key(public_key))


def encode_context(ctx: MemberContext) -> bytes:
    """The context bytes of ``ctx`` (``decode_context`` reads them back)."""
    plain: dict[str, str] = {"raft_addr": ctx.raft_addr, "http_addr": ctx.http_addr}
    if ctx.public_key is not None:
        plain["public_key"] = ctx.public_key
    return json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()


def decode_context(data: Any) -> MemberContext:
    """The context ``encode_context`` wrote.

    Raises:
        ValueError: ``data`` is not bytes of a JSON object with exactly the known fields,
            each valid, at most ``MAX_CONTEXT_BYTES``.
    """
    if type(data) is not bytes or not 0 < len(data) <= MAX_CONTEXT_BYTES:
        raise ValueError("context: expected 1 to 4096 bytes")
    try:
        plain = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("context: not JSON") from None
    if type(plain) is not dict:
        raise ValueError("context: expected a JSON object")
    unknown = sorted(set(plain) - _KEYS)
    if unknown:
        raise ValueError(f"context: unknown field {unknown[0][:64]!r}")
    if "raft_addr" not in plain or "http_addr" not in plain:
        raise ValueError("context: raft_addr and http_addr are required")
    return member_context(plain["raft_addr"], plain["http_addr"], plain.get("public_key"))


def context_or_none(data: bytes) -> MemberContext | None:
    """The context in ``data``, or None when there is none or it does not decode (a member
    bootstrapped from ``--peers`` has none: its addresses come from the configuration)."""
    if not data:
        return None
    try:
        return decode_context(data)
    except ValueError:
        return None
