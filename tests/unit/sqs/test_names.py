"""Queue names, URLs, ARNs and receipt handles."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.names import (
    Account,
    Receipt,
    check_queue_name,
    decode_receipt_handle,
    encode_receipt_handle,
    is_fifo_name,
    is_valid_queue_name,
)

ACCOUNT = Account("http://127.0.0.1:9324", "123456789012", "eu-west-1")
KEY = b"k" * 32


@pytest.mark.parametrize("name", ["a", "A-b_9", "q" * 80, "q" * 75 + ".fifo", "x.fifo"])
def test_valid_names(name: str) -> None:
    assert is_valid_queue_name(name)
    assert check_queue_name(name) == name


@pytest.mark.parametrize("name", ["", "q" * 81, "q" * 76 + ".fifo", "a b", "a.b", ".fifo",
                                  "é", "a/b", 7, None])
def test_invalid_names(name: object) -> None:
    assert not is_valid_queue_name(name)
    with pytest.raises(SqsError) as caught:
        check_queue_name(name)
    assert caught.value.code is SqsCode.INVALID_PARAMETER_VALUE
    assert caught.value.message.startswith("QueueName")


def test_fifo_names() -> None:
    assert is_fifo_name("jobs.fifo")
    assert not is_fifo_name("jobs")


def test_url_and_arn_round_trip() -> None:
    url = ACCOUNT.queue_url("jobs")
    assert url == "http://127.0.0.1:9324/123456789012/jobs"
    assert ACCOUNT.name_from_url(url) == "jobs"
    # Any host: clients reach a node by any of its addresses.
    assert ACCOUNT.name_from_url("https://sqs.example:1/123456789012/jobs.fifo") == "jobs.fifo"
    arn = ACCOUNT.queue_arn("jobs")
    assert arn == "arn:aws:sqs:eu-west-1:123456789012:jobs"
    assert ACCOUNT.name_from_arn(arn) == "jobs"


@pytest.mark.parametrize(("url", "code"), [
    ("http://h/000000000000/jobs", SqsCode.QUEUE_DOES_NOT_EXIST),
    ("http://h/123456789012/bad name", SqsCode.QUEUE_DOES_NOT_EXIST),
    ("http://h/123456789012", SqsCode.INVALID_ADDRESS),
    ("http://h/123456789012/jobs/x", SqsCode.INVALID_ADDRESS),
    ("ftp://h/123456789012/jobs", SqsCode.INVALID_ADDRESS),
    ("jobs", SqsCode.INVALID_ADDRESS),
    ("http://[::1/123456789012/jobs", SqsCode.INVALID_ADDRESS),
    (None, SqsCode.INVALID_ADDRESS),
])
def test_bad_urls(url: object, code: SqsCode) -> None:
    with pytest.raises(SqsError) as caught:
        ACCOUNT.name_from_url(url)
    assert caught.value.code is code


@pytest.mark.parametrize("arn", ["arn:aws:sqs:us-east-1:123456789012:jobs",
                                 "arn:aws:sqs:eu-west-1:000000000000:jobs",
                                 "arn:aws:sns:eu-west-1:123456789012:jobs",
                                 "arn:aws:sqs:eu-west-1:123456789012:bad name", 3])
def test_bad_arns(arn: object) -> None:
    with pytest.raises(SqsError) as caught:
        ACCOUNT.name_from_arn(arn)
    assert caught.value.code is SqsCode.INVALID_PARAMETER_VALUE


def test_account_rules() -> None:
    with pytest.raises(ValueError):
        Account("http://h", "12")
    with pytest.raises(ValueError):
        Account("http://h/")
    with pytest.raises(ValueError):
        Account("http://h", region="Not A Region")


def test_receipt_handle_round_trip() -> None:
    receipt = Receipt("jobs.fifo", "t-0001", "lease-abc")
    handle = encode_receipt_handle(receipt, KEY)
    assert handle.replace("-", "").replace("_", "").isalnum()
    assert decode_receipt_handle(handle, KEY) == receipt


def _invalid(handle: object, key: bytes = KEY) -> None:
    with pytest.raises(SqsError) as caught:
        decode_receipt_handle(handle, key)
    assert caught.value.code is SqsCode.RECEIPT_HANDLE_IS_INVALID


def test_forged_handles_are_refused() -> None:
    handle = encode_receipt_handle(Receipt("jobs", "t-1", "tok"), KEY)
    _invalid(handle, b"another key")
    raw = bytearray(base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4)))
    raw[0] ^= 1  # "jobs" -> "kobs", tag unchanged
    _invalid(base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("="))
    forged = b"jobs\x00t-2\x00tok" + b"\x00" * 16
    _invalid(base64.urlsafe_b64encode(forged).decode())


@pytest.mark.parametrize("handle", ["", "!!!", "a", "é", "x" * 2000, None, 5])
def test_garbage_handles_are_refused(handle: object) -> None:
    _invalid(handle)


def test_receipt_fields_may_not_hold_nul() -> None:
    with pytest.raises(ValueError):
        encode_receipt_handle(Receipt("q", "a\x00b", "t"), KEY)


@given(st.text(max_size=300))
def test_decoding_anything_raises_only_receipt_handle_is_invalid(handle: str) -> None:
    try:
        decode_receipt_handle(handle, KEY)
    except SqsError as error:
        assert error.code is SqsCode.RECEIPT_HANDLE_IS_INVALID
    else:
        raise AssertionError("a random string passed the HMAC check")


@given(st.text(min_size=1, max_size=80).filter(lambda s: "\x00" not in s),
       st.text(max_size=40).filter(lambda s: "\x00" not in s),
       st.text(max_size=40).filter(lambda s: "\x00" not in s))
def test_any_receipt_round_trips(queue: str, task_id: str, token: str) -> None:
    receipt = Receipt(queue, task_id, token)
    assert decode_receipt_handle(encode_receipt_handle(receipt, KEY), KEY) == receipt
