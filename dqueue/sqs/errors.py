"""SQS's errors as data, and their rendering for the JSON and the Query protocol.

Every SQS error code the layer can answer is a member of ``SqsCode`` with one ``ErrorSpec``:
the HTTP status, the legacy Query protocol code and who is at fault. The two renderings follow
what botocore's parsers read:

- JSON protocol: body ``{"__type": "com.amazonaws.sqs#<Code>", "message": ...}`` and the header
  ``x-amzn-query-error: <legacy code>;<Sender|Receiver>``. botocore (SQS is "awsQueryCompatible")
  then reports the legacy code as ``Error.Code`` and keeps the shape name as
  ``Error.QueryErrorCode``, which picks the modeled exception class (``QueueDoesNotExist``).
- Query protocol: an XML ``ErrorResponse`` with ``Error/Type``, ``Error/Code`` (the legacy code),
  ``Error/Message`` and ``RequestId``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from xml.sax.saxutils import escape

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
XML_CONTENT_TYPE = "text/xml"
QUERY_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"


class Fault(StrEnum):
    """Who caused an error, as SQS words it."""

    SENDER = "Sender"
    RECEIVER = "Receiver"


class SqsCode(StrEnum):
    """An SQS error code (the JSON protocol's shape name)."""

    # Modeled errors of the SQS API.
    QUEUE_DOES_NOT_EXIST = "QueueDoesNotExist"
    QUEUE_NAME_EXISTS = "QueueNameExists"
    QUEUE_DELETED_RECENTLY = "QueueDeletedRecently"
    PURGE_QUEUE_IN_PROGRESS = "PurgeQueueInProgress"
    BATCH_ENTRY_IDS_NOT_DISTINCT = "BatchEntryIdsNotDistinct"
    BATCH_REQUEST_TOO_LONG = "BatchRequestTooLong"
    EMPTY_BATCH_REQUEST = "EmptyBatchRequest"
    INVALID_BATCH_ENTRY_ID = "InvalidBatchEntryId"
    TOO_MANY_ENTRIES_IN_BATCH_REQUEST = "TooManyEntriesInBatchRequest"
    UNSUPPORTED_OPERATION = "UnsupportedOperation"
    MESSAGE_NOT_INFLIGHT = "MessageNotInflight"
    RECEIPT_HANDLE_IS_INVALID = "ReceiptHandleIsInvalid"
    INVALID_ID_FORMAT = "InvalidIdFormat"
    INVALID_ATTRIBUTE_NAME = "InvalidAttributeName"
    INVALID_ATTRIBUTE_VALUE = "InvalidAttributeValue"
    INVALID_MESSAGE_CONTENTS = "InvalidMessageContents"
    INVALID_ADDRESS = "InvalidAddress"
    INVALID_SECURITY = "InvalidSecurity"
    OVER_LIMIT = "OverLimit"
    REQUEST_THROTTLED = "RequestThrottled"
    RESOURCE_NOT_FOUND = "ResourceNotFoundException"
    # Errors common to AWS services.
    INVALID_PARAMETER_VALUE = "InvalidParameterValue"
    MISSING_PARAMETER = "MissingParameter"
    INVALID_ACTION = "InvalidAction"
    MALFORMED_REQUEST = "MalformedQueryString"
    INCOMPLETE_SIGNATURE = "IncompleteSignature"
    SIGNATURE_DOES_NOT_MATCH = "SignatureDoesNotMatch"
    INVALID_CLIENT_TOKEN_ID = "InvalidClientTokenId"
    MISSING_AUTHENTICATION_TOKEN = "MissingAuthenticationToken"
    REQUEST_EXPIRED = "RequestExpired"
    ACCESS_DENIED = "AccessDenied"
    INTERNAL_FAILURE = "InternalFailure"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"


@dataclass(frozen=True)
class ErrorSpec:
    """How one code is answered: HTTP status, legacy Query code, fault."""

    status: int
    query_code: str
    fault: Fault = Fault.SENDER


_LEGACY = "AWS.SimpleQueueService."

SPECS: dict[SqsCode, ErrorSpec] = {
    SqsCode.QUEUE_DOES_NOT_EXIST: ErrorSpec(400, _LEGACY + "NonExistentQueue"),
    SqsCode.QUEUE_NAME_EXISTS: ErrorSpec(400, "QueueAlreadyExists"),
    SqsCode.QUEUE_DELETED_RECENTLY: ErrorSpec(400, _LEGACY + "QueueDeletedRecently"),
    SqsCode.PURGE_QUEUE_IN_PROGRESS: ErrorSpec(403, _LEGACY + "PurgeQueueInProgress"),
    SqsCode.BATCH_ENTRY_IDS_NOT_DISTINCT: ErrorSpec(400, _LEGACY + "BatchEntryIdsNotDistinct"),
    SqsCode.BATCH_REQUEST_TOO_LONG: ErrorSpec(400, _LEGACY + "BatchRequestTooLong"),
    SqsCode.EMPTY_BATCH_REQUEST: ErrorSpec(400, _LEGACY + "EmptyBatchRequest"),
    SqsCode.INVALID_BATCH_ENTRY_ID: ErrorSpec(400, _LEGACY + "InvalidBatchEntryId"),
    SqsCode.TOO_MANY_ENTRIES_IN_BATCH_REQUEST: ErrorSpec(
        400, _LEGACY + "TooManyEntriesInBatchRequest"),
    SqsCode.UNSUPPORTED_OPERATION: ErrorSpec(400, _LEGACY + "UnsupportedOperation"),
    SqsCode.MESSAGE_NOT_INFLIGHT: ErrorSpec(400, _LEGACY + "MessageNotInflight"),
    SqsCode.RECEIPT_HANDLE_IS_INVALID: ErrorSpec(400, "ReceiptHandleIsInvalid"),
    SqsCode.INVALID_ID_FORMAT: ErrorSpec(400, "InvalidIdFormat"),
    SqsCode.INVALID_ATTRIBUTE_NAME: ErrorSpec(400, "InvalidAttributeName"),
    SqsCode.INVALID_ATTRIBUTE_VALUE: ErrorSpec(400, "InvalidAttributeValue"),
    SqsCode.INVALID_MESSAGE_CONTENTS: ErrorSpec(400, "InvalidMessageContents"),
    SqsCode.INVALID_ADDRESS: ErrorSpec(404, "InvalidAddress"),
    SqsCode.INVALID_SECURITY: ErrorSpec(403, "InvalidSecurity"),
    SqsCode.OVER_LIMIT: ErrorSpec(403, "OverLimit"),
    SqsCode.REQUEST_THROTTLED: ErrorSpec(400, "RequestThrottled"),
    SqsCode.RESOURCE_NOT_FOUND: ErrorSpec(400, "ResourceNotFoundException"),
    SqsCode.INVALID_PARAMETER_VALUE: ErrorSpec(400, "InvalidParameterValue"),
    SqsCode.MISSING_PARAMETER: ErrorSpec(400, "MissingParameter"),
    SqsCode.INVALID_ACTION: ErrorSpec(400, "InvalidAction"),
    SqsCode.MALFORMED_REQUEST: ErrorSpec(400, "MalformedQueryString"),
    SqsCode.INCOMPLETE_SIGNATURE: ErrorSpec(400, "IncompleteSignature"),
    SqsCode.SIGNATURE_DOES_NOT_MATCH: ErrorSpec(403, "SignatureDoesNotMatch"),
    SqsCode.INVALID_CLIENT_TOKEN_ID: ErrorSpec(403, "InvalidClientTokenId"),
    SqsCode.MISSING_AUTHENTICATION_TOKEN: ErrorSpec(403, "MissingAuthenticationToken"),
    SqsCode.REQUEST_EXPIRED: ErrorSpec(400, "RequestExpired"),
    SqsCode.ACCESS_DENIED: ErrorSpec(403, "AccessDenied"),
    SqsCode.INTERNAL_FAILURE: ErrorSpec(500, "InternalFailure", Fault.RECEIVER),
    SqsCode.SERVICE_UNAVAILABLE: ErrorSpec(503, "ServiceUnavailable", Fault.RECEIVER),
}


class SqsError(Exception):
    """An SQS error answer: a code of ``SqsCode`` and a message naming what is wrong."""

    def __init__(self, code: SqsCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message

    @property
    def spec(self) -> ErrorSpec:
        """The status, legacy code and fault of this error's code."""
        return SPECS[self.code]

    @property
    def status(self) -> int:
        """The HTTP status of the answer."""
        return self.spec.status

    @property
    def is_sender_fault(self) -> bool:
        """Whether the caller caused it (``SenderFault`` of batch result entries)."""
        return self.spec.fault is Fault.SENDER


@dataclass(frozen=True)
class Rendered:
    """An HTTP answer ready to send: status, headers, body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def render_json_error(error: SqsError, request_id: str) -> Rendered:
    """Render ``error`` for the JSON protocol (``application/x-amz-json-1.0``)."""
    spec = error.spec
    body = json.dumps({"__type": f"com.amazonaws.sqs#{error.code.value}",
                       "message": error.message}).encode()
    headers = {
        "Content-Type": JSON_CONTENT_TYPE,
        "x-amzn-RequestId": request_id,
        "x-amzn-query-error": f"{spec.query_code};{spec.fault.value}",
    }
    return Rendered(spec.status, headers, body)


def render_query_error(error: SqsError, request_id: str) -> Rendered:
    """Render ``error`` for the Query protocol: an XML ``ErrorResponse``."""
    spec = error.spec
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{QUERY_NAMESPACE}">'
        f"<Error><Type>{spec.fault.value}</Type><Code>{escape(spec.query_code)}</Code>"
        f"<Message>{escape(error.message)}</Message><Detail/></Error>"
        f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>"
    ).encode()
    headers = {"Content-Type": XML_CONTENT_TYPE, "x-amzn-RequestId": request_id}
    return Rendered(spec.status, headers, body)
