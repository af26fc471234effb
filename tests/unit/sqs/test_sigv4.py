"""SigV4 verification of requests signed by botocore's own signer (what boto3 sends)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.sqs.errors import SqsCode, SqsError
from dqueue.sqs.sigv4 import verify
from tests.depth import examples
from tests.unit.sqs.conftest import aws_request

KEYS = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AKID2": "other"}


def signed(request: AWSRequest, *, key: str = "AKIDEXAMPLE", secret: str | None = None,
           region: str = "us-east-1", service: str = "sqs") -> AWSRequest:
    credentials = Credentials(key, secret if secret is not None else KEYS[key])
    SigV4Auth(credentials, service, region).add_auth(request)
    return request


def request_ms(request: AWSRequest) -> int:
    stamp = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    return int(stamp.replace(tzinfo=UTC).timestamp() * 1000)


def check(request: AWSRequest, *, body: bytes | None = None, skew_ms: int = 0,
          headers: dict[str, str] | None = None, region: str | None = "us-east-1") -> str:
    parts = urlsplit(request.url)
    sent = dict(request.headers.items())
    sent["Host"] = parts.netloc
    if headers is not None:
        sent.update(headers)
    data = request.body if body is None else body
    if isinstance(data, str):
        data = data.encode()
    return verify(request.method, parts.path, parts.query, sent, data or b"",
                  secret_for=KEYS.get, now_ms=request_ms(request) + skew_ms, region=region)


def refused(request: AWSRequest, **kwargs: object) -> SqsCode:
    with pytest.raises(SqsError) as caught:
        check(request, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def send_message(body: str = "hello") -> AWSRequest:
    return aws_request("SendMessage", {"QueueUrl": "http://127.0.0.1:9324/000000000000/q",
                                       "MessageBody": body})


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_correct_secret_is_accepted(protocol: str) -> None:
    request = signed(aws_request("ReceiveMessage", {"QueueUrl": "u"}, protocol=protocol))
    assert check(request) == "AKIDEXAMPLE"


def test_query_string_request_is_accepted() -> None:
    request = signed(AWSRequest(method="GET",
                                url="http://127.0.0.1:9324/?Action=ListQueues&QueueNamePrefix=a%20b"))
    assert check(request) == "AKIDEXAMPLE"


def test_skew_within_fifteen_minutes_is_accepted() -> None:
    request = signed(send_message())
    assert check(request, skew_ms=14 * 60 * 1000) == "AKIDEXAMPLE"
    assert check(request, skew_ms=-14 * 60 * 1000) == "AKIDEXAMPLE"


def test_wrong_secret_is_refused() -> None:
    assert refused(signed(send_message(), secret="wrong")) is SqsCode.SIGNATURE_DOES_NOT_MATCH


def test_tampered_body_is_refused() -> None:
    request = signed(send_message("pay 10"))
    tampered = request.body.replace(b"pay 10", b"pay 99")
    assert tampered != request.body
    assert refused(request, body=tampered) is SqsCode.SIGNATURE_DOES_NOT_MATCH


def test_tampered_signed_header_is_refused() -> None:
    request = signed(send_message())
    code = refused(request, headers={"X-Amz-Target": "AmazonSQS.PurgeQueue"})
    assert code is SqsCode.SIGNATURE_DOES_NOT_MATCH


def test_unknown_access_key_is_refused() -> None:
    request = signed(send_message(), key="AKIDEXAMPLE")
    auth = request.headers["Authorization"].replace("AKIDEXAMPLE", "AKIDUNKNOWN")
    assert refused(request, headers={"Authorization": auth}) is SqsCode.INVALID_CLIENT_TOKEN_ID


def test_other_key_with_its_secret_is_accepted() -> None:
    assert check(signed(send_message(), key="AKID2")) == "AKID2"


@pytest.mark.parametrize("skew_ms", [15 * 60 * 1000 + 1000, -15 * 60 * 1000 - 1000])
def test_request_time_too_far_from_now_is_refused(skew_ms: int) -> None:
    assert refused(signed(send_message()), skew_ms=skew_ms) is SqsCode.REQUEST_EXPIRED


def test_wrong_service_or_region_is_refused() -> None:
    assert refused(signed(send_message(), service="sns")) is SqsCode.SIGNATURE_DOES_NOT_MATCH
    request = signed(send_message(), region="eu-west-1")
    assert refused(request) is SqsCode.SIGNATURE_DOES_NOT_MATCH
    assert check(request, region=None) == "AKIDEXAMPLE"


def test_missing_authorization_is_refused() -> None:
    request = send_message()
    request.headers["X-Amz-Date"] = "20260101T000000Z"
    assert refused(request) is SqsCode.MISSING_AUTHENTICATION_TOKEN


@pytest.mark.parametrize("authorization", [
    "AWS4-HMAC-SHA1 Credential=a/b/c/sqs/aws4_request, SignedHeaders=host, Signature=00",
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sqs/aws4_request",
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x, SignedHeaders=host, Signature=" + "0" * 64,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=x-amz-date, Signature=" + "0" * 64,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=host;x-absent, Signature=" + "0" * 64,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=host, Signature=nothex",
    "AWS4-HMAC-SHA256 garbage",
])
def test_malformed_authorization_is_incomplete(authorization: str) -> None:
    request = signed(send_message())
    code = refused(request, headers={"Authorization": authorization})
    assert code is SqsCode.INCOMPLETE_SIGNATURE


def test_missing_date_is_incomplete() -> None:
    request = signed(send_message())
    assert refused(request, headers={"X-Amz-Date": "yesterday"}) is SqsCode.INCOMPLETE_SIGNATURE


_auth_parts = st.sampled_from([
    "AWS4-HMAC-SHA256 ", "Credential=", "AKIDEXAMPLE", "/20260101", "/us-east-1", "/sqs",
    "/aws4_request", ", ", "SignedHeaders=", "host", ";x-amz-date", "Signature=", "0" * 64,
    "=", ",", " ", "é", "\ud800"])


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_auth_parts, max_size=14).map("".join),
       st.sampled_from(["20260101T000000Z", "20261301T000000Z", "x", "\ud800"]),
       st.text(max_size=20), st.binary(max_size=40))
def test_verify_raises_only_sqs_errors(authorization: str, amz_date: str, path: str,
                                       body: bytes) -> None:
    headers = {"Authorization": authorization, "X-Amz-Date": amz_date, "Host": "h\ud800"}
    with pytest.raises(SqsError):
        verify("POST", "/" + path, "a=%FF&b", headers, body, secret_for=KEYS.get,
               now_ms=1_767_225_600_000)
