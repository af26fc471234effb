"""MD5OfMessageBody and MD5OfMessageAttributes as SQS computes them."""

from __future__ import annotations

import hashlib
import struct

from hypothesis import given
from hypothesis import strategies as st

from dqueue.sqs.md5 import md5_of_attributes, md5_of_body


def naive_md5(attributes: dict[str, dict]) -> str:
    """The documented algorithm, spelled out byte by byte (the reference model)."""
    out = b""
    for name in sorted(attributes):
        value = attributes[name]
        for text in (name, value["DataType"]):
            out += struct.pack(">I", len(text.encode())) + text.encode()
        if "BinaryValue" in value:
            out += b"\x02" + struct.pack(">I", len(value["BinaryValue"])) + value["BinaryValue"]
        else:
            data = value["StringValue"].encode()
            out += b"\x01" + struct.pack(">I", len(data)) + data
    return hashlib.md5(out).hexdigest()


def test_body_md5_is_the_md5_of_its_utf8_bytes() -> None:
    assert md5_of_body("héllo") == hashlib.md5("héllo".encode()).hexdigest()


def test_published_vectors() -> None:
    # Values SDK test suites check against what SQS returned.
    assert md5_of_attributes({
        "ordinal": {"DataType": "Number", "StringValue": "1"},
        "category": {"DataType": "String", "StringValue": "test"},
    }) == "d21ae90c49061e927f57df5f5d72be1f"
    assert md5_of_attributes({
        "SellerName": {"DataType": "String", "StringValue": "Example Store"},
    }) == "cd28f3b68aeee4b2eac9c66f2f694b58"


def test_no_attributes_has_no_md5() -> None:
    assert md5_of_attributes({}) is None


def test_custom_binary_type_uses_the_binary_transport() -> None:
    attrs = {"img": {"DataType": "Binary.png", "BinaryValue": b"\x89PNG"}}
    assert md5_of_attributes(attrs) == naive_md5(attrs)


_attribute = st.one_of(
    st.builds(lambda t, v: {"DataType": t, "StringValue": v},
              st.sampled_from(["String", "Number", "String.custom"]), st.text(min_size=1)),
    st.builds(lambda v: {"DataType": "Binary", "BinaryValue": v}, st.binary()),
)


@given(st.dictionaries(st.text(min_size=1, max_size=20), _attribute, min_size=1, max_size=10))
def test_matches_the_naive_model(attributes: dict[str, dict]) -> None:
    assert md5_of_attributes(attributes) == naive_md5(attributes)
