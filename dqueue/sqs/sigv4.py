"""Verification of AWS Signature Version 4 (header form), pure: the caller passes ``now``.

A signed request carries ``Authorization: AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/
<region>/sqs/aws4_request, SignedHeaders=<h1;h2;...>, Signature=<hex>`` and an ``X-Amz-Date``
header (``yyyymmddTHHMMSSZ``). The verifier rebuilds the canonical request from what was
received (method, path, query, the signed headers, the SHA-256 of the body it actually got, not
a hash the client claims), the string to sign and the signing key derived from the secret, and
compares signatures in constant time.

Errors, as SQS answers them: no ``Authorization`` -> MissingAuthenticationToken; a malformed
header, a missing date or an unsigned ``host`` -> IncompleteSignature; an unknown access key ->
InvalidClientTokenId; a request time more than 15 minutes from ``now`` -> RequestExpired; a
wrong scope (service, region, date) or signature -> SignatureDoesNotMatch. Presigned URLs
(``X-Amz-Signature`` in the query) are not supported yet.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote

from dqueue.sqs.errors import SqsCode, SqsError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sqs"
MAX_SKEW_MS = 15 * 60 * 1000
_AMZ_DATE_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME_RE = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
MAX_AUTHORIZATION_CHARS = 4096


def _incomplete(message: str) -> SqsError:
    return SqsError(SqsCode.INCOMPLETE_SIGNATURE, message)


def _mismatch(message: str) -> SqsError:
    return SqsError(SqsCode.SIGNATURE_DOES_NOT_MATCH, message)


def _parse_authorization(value: str) -> tuple[str, list[str], str]:
    """(credential, signed header names, signature) of an Authorization header."""
    if len(value) > MAX_AUTHORIZATION_CHARS or not value.isascii():
        raise _incomplete("Authorization header is too long or not ASCII")
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': only {ALGORITHM} is accepted")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, field = item.strip().partition("=")
        if not sep or name in parts:
            raise _incomplete(f"Authorization header: malformed element {item.strip()!r}")
        parts[name] = field
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not parts.get(required):
            raise _incomplete(f"Authorization header requires '{required}' parameter")
    signed = parts["SignedHeaders"].split(";")
    if any(_HEADER_NAME_RE.fullmatch(name) is None for name in signed):
        raise _incomplete("SignedHeaders: malformed header list")
    if "host" not in signed:
        raise _incomplete("SignedHeaders must include 'host'")
    if _SIGNATURE_RE.fullmatch(parts["Signature"]) is None:
        raise _incomplete("Signature: must be 64 lower-case hex digits")
    return parts["Credential"], signed, parts["Signature"]


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_path(path: str) -> str:
    return quote(unquote(path), safe="/~") if path else "/"


def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """The SigV4 signing key of ``secret`` for one day, region and service."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def verify(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, *,
           secret_for: Callable[[str], str | None], now_ms: int,
           region: str | None = None) -> str:
    """Check the SigV4 signature of a request; return its access key id.

    Args:
        method: the HTTP method as received.
        path: the request path as on the wire (still percent-encoded, without the query;
            not WSGI's decoded ``PATH_INFO``).
        query: the raw query string (without ``?``), ``""`` if none.
        headers: the received headers (names in any case).
        body: the body bytes as received.
        secret_for: access key id -> its secret, or None if the key is unknown.
        now_ms: the current time, Unix milliseconds.
        region: the region the credential must be scoped to, or None to accept any.

    Raises:
        SqsError: with the code SQS would answer (module docstring).
    """
    if not (path.isascii() and query.isascii()):
        raise _mismatch("the request path and query must be ASCII (percent-encoded)")
    lower = {name.lower(): value for name, value in headers.items()}
    authorization = lower.get("authorization")
    if authorization is None:
        raise SqsError(SqsCode.MISSING_AUTHENTICATION_TOKEN,
                       "Request is missing Authentication Token")
    credential, signed, signature = _parse_authorization(authorization)
    scope_parts = credential.split("/")
    if len(scope_parts) != 5 or not all(scope_parts):
        raise _incomplete("Credential: must be <key>/<date>/<region>/<service>/aws4_request")
    access_key, date, cred_region, service, terminator = scope_parts
    amz_date = lower.get("x-amz-date")
    if amz_date is None or _AMZ_DATE_RE.fullmatch(amz_date) is None:
        raise _incomplete("Authorization header requires a valid 'X-Amz-Date' header")
    missing = [name for name in signed if name not in lower]
    if missing:
        raise _incomplete(f"SignedHeaders names a header the request lacks: {missing[0]}")
    secret = secret_for(access_key)
    if secret is None:
        raise SqsError(SqsCode.INVALID_CLIENT_TOKEN_ID,
                       "The security token included in the request is invalid.")
    try:
        request_time = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete("X-Amz-Date: not a valid date") from None
    request_ms = int(request_time.timestamp() * 1000)
    if abs(request_ms - now_ms) > MAX_SKEW_MS:
        raise SqsError(SqsCode.REQUEST_EXPIRED,
                       f"Request has expired: X-Amz-Date {amz_date} is more than 15 minutes "
                       "from the server's time")
    if terminator != "aws4_request" or service != SERVICE:
        raise _mismatch(f"Credential should be scoped to a valid service: '{SERVICE}'")
    if region is not None and cred_region != region:
        raise _mismatch(f"Credential should be scoped to a valid region: '{region}'")
    if date != amz_date[:8]:
        raise _mismatch("Credential should be scoped to the date of X-Amz-Date")
    canonical_headers = "".join(
        f"{name}:{' '.join(lower[name].split())}\n" for name in signed)
    canonical_request = "\n".join([
        method, _canonical_path(path), _canonical_query(query), canonical_headers,
        ";".join(signed), hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{cred_region}/{service}/aws4_request"
    string_to_sign = "\n".join([
        ALGORITHM, amz_date, scope,
        hashlib.sha256(canonical_request.encode("utf-8", "surrogatepass")).hexdigest()])
    expected = hmac.new(signing_key(secret, date, cred_region), string_to_sign.encode("utf-8"),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise _mismatch("The request signature we calculated does not match the signature "
                        "you provided.")
    return access_key
