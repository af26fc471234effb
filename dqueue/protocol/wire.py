"""The one framing used on every ZeroMQ socket: peer traffic, API-to-Raft IPC and workers.

A message is three frames ``[version, kind, body]``: ``version`` is the single byte
``WIRE_VERSION``, ``kind`` a short ASCII name, ``body`` msgpack of plain values (never pickle).
On a ROUTER socket the routing identity frames come first and are not part of the message.
"""

from __future__ import annotations

from typing import Any

import msgpack

WIRE_VERSION = b"\x01"
MAX_KIND_BYTES = 32


class FrameError(ValueError):
    """A message that does not follow the framing; the receiver drops and counts it."""


def pack(body: Any) -> bytes:
    """The body frame of ``body`` (plain values only), to send it to many with
    ``encode_packed``.

    Raises:
        TypeError, ValueError, OverflowError: ``body`` holds a value msgpack cannot pack.
    """
    return msgpack.packb(body, use_bin_type=True)


def encode(kind: bytes, body: Any) -> list[bytes]:
    """Return the frames of one message of ``kind`` carrying ``body`` (plain values only)."""
    return [WIRE_VERSION, kind, msgpack.packb(body, use_bin_type=True)]


def encode_packed(kind: bytes, packed_body: bytes) -> list[bytes]:
    """Like ``encode`` with a body already packed by ``pack`` (one encoding for many peers)."""
    return [WIRE_VERSION, kind, packed_body]


def decode(frames: list[bytes]) -> tuple[bytes, Any]:
    """Return ``(kind, body)`` of a message, or raise FrameError if it is malformed.

    Never raises anything else, whatever the bytes: callers rely on that to drop garbage
    from the network without crashing.
    """
    if len(frames) != 3:
        raise FrameError(f"expected 3 frames, got {len(frames)}")
    version, kind, body = frames
    if version != WIRE_VERSION:
        raise FrameError(f"unsupported wire version {bytes(version[:4])!r}")
    if not kind or len(kind) > MAX_KIND_BYTES:
        raise FrameError("bad message kind")
    try:
        return bytes(kind), msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise FrameError(f"undecodable body: {exc.__class__.__name__}") from None
