"""Queue names, queue URLs, ARNs and receipt handles.

- A queue name is 1 to 80 of ``[A-Za-z0-9_-]``; a FIFO queue's name ends in ``.fifo`` (the
  suffix counts in the 80).
- A queue URL is ``{endpoint}/{account_id}/{queue_name}``; an ARN is
  ``arn:aws:sqs:{region}:{account_id}:{queue_name}``.
- A receipt handle is opaque to clients: the URL-safe base64 (no padding) of
  ``queue NUL task_id NUL lease_token`` followed by a 16-byte HMAC-SHA256 tag of those bytes
  under a key the caller holds. A handle whose tag does not match was forged or damaged and is
  refused with ``ReceiptHandleIsInvalid``; a genuine handle of a message since deleted or
  re-leased decodes fine and the queue decides (a stale handle is harmless, as in SQS).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from dqueue.sqs.errors import SqsCode, SqsError

MAX_QUEUE_NAME_CHARS = 80
FIFO_SUFFIX = ".fifo"
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")
_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_REGION_RE = re.compile(r"[a-z0-9-]{1,32}")
TAG_BYTES = 16
MAX_RECEIPT_HANDLE_CHARS = 1024


def is_valid_queue_name(name: object) -> bool:
    """Whether ``name`` follows SQS's queue name rules (with or without ``.fifo``)."""
    return type(name) is str and (_NAME_RE.fullmatch(name) is not None
                                  or _FIFO_NAME_RE.fullmatch(name) is not None)


def check_queue_name(name: object, field: str = "QueueName") -> str:
    """Return ``name`` if it is a valid queue name, else raise InvalidParameterValue."""
    if not is_valid_queue_name(name):
        raise SqsError(SqsCode.INVALID_PARAMETER_VALUE,
                       f"{field}: can only include alphanumeric characters, hyphens or "
                       f"underscores, 1 to {MAX_QUEUE_NAME_CHARS} long, with an optional "
                       f"'{FIFO_SUFFIX}' suffix")
    assert isinstance(name, str)
    return name


def is_fifo_name(name: str) -> bool:
    """Whether a (valid) queue name is a FIFO queue's."""
    return name.endswith(FIFO_SUFFIX)


@dataclass(frozen=True)
class Account:
    """Where queues live in URLs and ARNs: the endpoint, account id and region."""

    endpoint: str  # e.g. "http://127.0.0.1:8080", no trailing slash
    account_id: str = "000000000000"
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        if _ACCOUNT_RE.fullmatch(self.account_id) is None:
            raise ValueError("account_id must be 12 digits")
        if _REGION_RE.fullmatch(self.region) is None:
            raise ValueError("region must be lower-case letters, digits and '-'")
        if self.endpoint.endswith("/"):
            raise ValueError("endpoint must not end with '/'")

    def queue_url(self, name: str) -> str:
        """The URL of queue ``name``."""
        return f"{self.endpoint}/{self.account_id}/{name}"

    def queue_arn(self, name: str) -> str:
        """The ARN of queue ``name``."""
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def name_from_url(self, url: object) -> str:
        """The queue name of a queue URL, or QueueDoesNotExist/InvalidAddress.

        Only the path counts (clients reach a node by any of its addresses, and SQS itself
        accepts a URL of another host): it must be ``/{account_id}/{name}``.
        """
        if type(url) is not str or len(url) > 2048:
            raise SqsError(SqsCode.INVALID_ADDRESS, "QueueUrl: not a queue URL")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise SqsError(SqsCode.INVALID_ADDRESS, "QueueUrl: not a queue URL") from None
        segments = parts.path.split("/")
        if parts.scheme not in ("http", "https") or len(segments) != 3 or segments[0] != "":
            raise SqsError(SqsCode.INVALID_ADDRESS, "QueueUrl: not a queue URL")
        if segments[1] != self.account_id or not is_valid_queue_name(segments[2]):
            raise SqsError(SqsCode.QUEUE_DOES_NOT_EXIST,
                           "The specified queue does not exist.")
        return segments[2]

    def name_from_arn(self, arn: object, field: str = "deadLetterTargetArn") -> str:
        """The queue name of an SQS queue ARN of this account, or InvalidParameterValue."""
        prefix = f"arn:aws:sqs:{self.region}:{self.account_id}:"
        if type(arn) is not str or not arn.startswith(prefix):
            raise SqsError(SqsCode.INVALID_PARAMETER_VALUE,
                           f"{field}: not the ARN of a queue of this account ({prefix}...)")
        return check_queue_name(arn[len(prefix):], field)


@dataclass(frozen=True)
class Receipt:
    """What a receipt handle stands for: one lease of one task."""

    queue: str
    task_id: str
    lease_token: str


def _tag(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()[:TAG_BYTES]


def encode_receipt_handle(receipt: Receipt, key: bytes) -> str:
    """The opaque receipt handle of ``receipt``, authenticated with ``key``."""
    fields = (receipt.queue, receipt.task_id, receipt.lease_token)
    if any("\x00" in part for part in fields):
        raise ValueError("receipt fields must not contain NUL")
    data = "\x00".join(fields).encode("utf-8")
    raw = data + _tag(key, data)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_receipt_handle(handle: object, key: bytes) -> Receipt:
    """The receipt a handle stands for, or ReceiptHandleIsInvalid if forged or malformed."""
    invalid = SqsError(SqsCode.RECEIPT_HANDLE_IS_INVALID,
                       "ReceiptHandle: the input receipt handle is invalid.")
    if type(handle) is not str or not handle or len(handle) > MAX_RECEIPT_HANDLE_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    if len(raw) <= TAG_BYTES:
        raise invalid
    data, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(key, data)):
        raise invalid
    try:
        queue, task_id, lease_token = data.decode("utf-8").split("\x00")
    except ValueError:  # UnicodeDecodeError is a ValueError; so is a wrong field count
        raise invalid from None
    return Receipt(queue, task_id, lease_token)
