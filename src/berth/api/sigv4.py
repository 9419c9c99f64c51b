"""AWS Signature Version 4 verification, header-signed and presigned.

The server rebuilds the canonical request exactly as the client must have (raw path, the query
re-encoded by RFC 3986, the headers the client listed as signed, the payload hash) and
recomputes the signature; only a byte-identical match passes. botocore's signer is the
reference: tests check this module computes what `botocore.auth.SigV4Auth` and
`SigV4QueryAuth` compute. It is reimplemented here because botocore's request objects cost more
than the rest of a typical request, and the signing key is cached per day, region and service.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Mapping
from urllib.parse import quote, unquote

from botocore.utils import normalize_url_path

from .errors import ServiceError

MAX_SKEW = dt.timedelta(minutes=15)
ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Identity:
    access_key: str
    region: str
    service: str


@lru_cache(maxsize=256)
def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(method: str, raw_path: str, raw_query: str,
                      headers: Mapping[str, str], signed: list[str], payload_hash: str,
                      drop_query: str | None = None) -> str:
    """The SigV4 canonical request; `drop_query` names a query key left out (presigned)."""
    path = _canonical_path(raw_path)
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        key, value = unquote(key), unquote(value)
        if key != drop_query:
            pairs.append((quote(key, safe="-_.~"), quote(value, safe="-_.~")))
    query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    lines = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    return "\n".join((method.upper(), path, query, lines, ";".join(signed), payload_hash))


@lru_cache(maxsize=1024)
def _canonical_path(raw_path: str) -> str:
    return quote(normalize_url_path(raw_path), safe="/~")


def signature(secret: str, amz_date: str, scope: tuple[str, str, str],
              canonical: str) -> str:
    region, service = scope[1], scope[2]
    string_to_sign = "\n".join((
        ALGORITHM, amz_date, f"{amz_date[:8]}/{region}/{service}/aws4_request",
        hashlib.sha256(canonical.encode()).hexdigest()))
    key = signing_key(secret, amz_date[:8], region, service)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _denied(code: str, message: str) -> ServiceError:
    return ServiceError(code, message, status=403)


@lru_cache(maxsize=64)  # clients sign with the current second: a handful are live at once
def _parse_time(value: str) -> dt.datetime:
    try:
        if len(value) != 16 or value[8] != "T" or value[15] != "Z":
            raise ValueError(value)
        return dt.datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]),
                           int(value[11:13]), int(value[13:15]), tzinfo=dt.timezone.utc)
    except ValueError:
        raise ServiceError("IncompleteSignature",
                           f"Date must be in ISO-8601 'basic format'. Got '{value}'.",
                           status=400) from None


def verify(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
           lookup_secret: Callable[[str], str | None],
           now: dt.datetime | None = None) -> Identity:
    """Check the request's signature; return who signed it, or raise the AWS auth error."""
    now = now or dt.datetime.now(dt.timezone.utc)
    auth = headers.get("authorization")
    if auth:
        return _verify_header(method, raw_path, raw_query, headers, body, auth,
                              lookup_secret, now)
    if "X-Amz-Signature=" in raw_query or "x-amz-signature=" in raw_query.lower():
        return _verify_query(method, raw_path, raw_query, headers, body, lookup_secret, now)
    raise _denied("MissingAuthenticationTokenException", "Missing Authentication Token")


def _parse_scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise ServiceError("IncompleteSignature",
                           f"Credential should be scoped to a valid region, not '{credential}'.",
                           status=400)
    return parts[0], parts[1], parts[2], parts[3]


def _verify_header(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                   body: bytes, auth: str, lookup_secret: Callable[[str], str | None],
                   now: dt.datetime) -> Identity:
    algo, _, rest = auth.partition(" ")
    if algo != ALGORITHM:
        raise ServiceError("IncompleteSignature",
                           f"Unsupported authorization type: {algo}", status=400)
    fields = {}
    for item in rest.split(","):
        key, _, value = item.strip().partition("=")
        fields[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise ServiceError("IncompleteSignature",
                           f"Authorization header requires '{missing[0]}' parameter.",
                           status=400)
    access_key, _day, region, service = _parse_scope(fields["Credential"])
    amz_date = headers.get("x-amz-date")
    if not amz_date:
        raise ServiceError("IncompleteSignature",
                           "Authorization header requires existence of either a "
                           "'X-Amz-Date' or a 'Date' header.", status=400)
    signed_at = _parse_time(amz_date)
    if abs(now - signed_at) > MAX_SKEW:
        raise _denied("InvalidSignatureException",
                      f"Signature expired: {amz_date} is now earlier than "
                      f"{(now - MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')} "
                      f"({now.strftime('%Y%m%dT%H%M%SZ')} - 15 min.)")
    secret = lookup_secret(access_key)
    if secret is None:
        raise _denied("UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    signed = fields["SignedHeaders"].split(";")
    payload_hash = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    canonical = canonical_request(method, raw_path, raw_query, headers, signed, payload_hash)
    expected = signature(secret, amz_date, (access_key, region, service), canonical)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise _denied("InvalidSignatureException",
                      "The request signature we calculated does not match the signature "
                      "you provided. Check your AWS Secret Access Key and signing method. "
                      "Consult the service documentation for details.")
    return Identity(access_key, region, service)


def _verify_query(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                  body: bytes, lookup_secret: Callable[[str], str | None], now: dt.datetime) -> Identity:
    pairs = [p.partition("=") for p in raw_query.split("&") if p]
    params = {unquote(k): unquote(v) for k, _, v in pairs}
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise ServiceError("IncompleteSignature", "Unsupported X-Amz-Algorithm.", status=400)
    for key in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if not params.get(key):
            raise ServiceError("IncompleteSignature",
                               f"Query-string authentication requires the {key} parameter.",
                               status=400)
    access_key, _day, region, service = _parse_scope(params["X-Amz-Credential"])
    signed_at = _parse_time(params["X-Amz-Date"])
    try:
        expires = int(params.get("X-Amz-Expires", "3600"))
    except ValueError:
        raise ServiceError("IncompleteSignature", "X-Amz-Expires must be a number.",
                           status=400) from None
    if now > signed_at + dt.timedelta(seconds=expires) or signed_at - now > MAX_SKEW:
        raise _denied("AccessDeniedException", "Request has expired")
    secret = lookup_secret(access_key)
    if secret is None:
        raise _denied("UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    signed = params["X-Amz-SignedHeaders"].split(";")
    # botocore presigns with the body's hash (of nothing, for a GET); S3-style presigners use
    # UNSIGNED-PAYLOAD. Either proves the same key signed the same URL.
    hashes = [headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest(),
              UNSIGNED_PAYLOAD]
    given = params["X-Amz-Signature"]
    if not any(hmac.compare_digest(given, signature(
            secret, params["X-Amz-Date"], (access_key, region, service),
            canonical_request(method, raw_path, raw_query, headers, signed, h,
                              drop_query="X-Amz-Signature"))) for h in hashes):
        raise _denied("InvalidSignatureException",
                      "The request signature we calculated does not match the signature "
                      "you provided.")
    return Identity(access_key, region, service)
