"""The digests SQS returns and its clients verify: MD5 of the body and of message attributes.

``MD5OfMessageAttributes`` is the MD5 of an encoding of the attributes sorted by name; for each
attribute: the name, the data type (both UTF-8, each prefixed by its length as a 4-byte
big-endian integer), one transport byte (1 for String and Number types, 2 for Binary), then the
value prefixed by its length (the UTF-8 string, or the raw bytes). Custom types
(``String.x``, ``Binary.y``) take the transport of their base type.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

STRING_TRANSPORT = 1
BINARY_TRANSPORT = 2


def md5_of_body(body: str) -> str:
    """``MD5OfMessageBody``: the hex MD5 of the body's UTF-8 bytes."""
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """``MD5OfMessageAttributes`` of validated attributes (JSON protocol shape), or None if empty.

    Args:
        attributes: name -> ``{"DataType": ..., "StringValue": str}`` or
            ``{"DataType": ..., "BinaryValue": bytes}``.
    """
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        digest.update(_length_prefixed(name.encode("utf-8")))
        digest.update(_length_prefixed(data_type.encode("utf-8")))
        if data_type.startswith("Binary"):
            digest.update(bytes([BINARY_TRANSPORT]))
            digest.update(_length_prefixed(bytes(value["BinaryValue"])))
        else:
            digest.update(bytes([STRING_TRANSPORT]))
            digest.update(_length_prefixed(value["StringValue"].encode("utf-8")))
    return digest.hexdigest()
