"""AWS Signature Version 4 verification, header-signed and presigned, with botocore's signer.

The server rebuilds the request exactly as it arrived (raw path, raw query, the headers the
client listed as signed, the body) and asks botocore to compute the signature the client must
have computed; only a byte-identical match passes.
"""
from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import unquote

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .errors import ServiceError

MAX_SKEW = dt.timedelta(minutes=15)
ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class Identity:
    access_key: str
    region: str
    service: str


class _Only:
    """Restricts botocore's signer to the headers the client declared as signed."""

    def __init__(self, signed: list[str]) -> None:
        self.signed = signed

    def headers_to_sign(self, request: AWSRequest) -> Mapping[str, str]:
        from botocore.awsrequest import HTTPHeaders
        out = HTTPHeaders()
        for name in self.signed:
            value = request.headers.get(name)
            if value is not None:
                out[name] = value
        return out


class _HeaderAuth(_Only, SigV4Auth):
    def __init__(self, signed: list[str], creds: Credentials, service: str, region: str):
        _Only.__init__(self, signed)
        SigV4Auth.__init__(self, creds, service, region)


class _QueryAuth(_Only, SigV4QueryAuth):
    def __init__(self, signed: list[str], creds: Credentials, service: str, region: str):
        _Only.__init__(self, signed)
        SigV4QueryAuth.__init__(self, creds, service, region)


def _denied(code: str, message: str) -> ServiceError:
    return ServiceError(code, message, status=403)


def _parse_time(value: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
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
        return _verify_query(method, raw_path, raw_query, headers, lookup_secret, now)
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
    request = _rebuild(method, raw_path, raw_query, headers, body, signed)
    request.context["timestamp"] = amz_date
    signer = _HeaderAuth(signed, Credentials(access_key, secret), service, region)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise _denied("InvalidSignatureException",
                      "The request signature we calculated does not match the signature "
                      "you provided. Check your AWS Secret Access Key and signing method. "
                      "Consult the service documentation for details.")
    return Identity(access_key, region, service)


def _verify_query(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                  lookup_secret: Callable[[str], str | None], now: dt.datetime) -> Identity:
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
    unsigned_query = "&".join(f"{k}{s}{v}" for k, s, v in pairs if k != "X-Amz-Signature")
    signed = params["X-Amz-SignedHeaders"].split(";")
    request = _rebuild(method, raw_path, unsigned_query, headers, b"", signed)
    request.context["timestamp"] = params["X-Amz-Date"]
    signer = _QueryAuth(signed, Credentials(access_key, secret), service, region)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        raise _denied("InvalidSignatureException",
                      "The request signature we calculated does not match the signature "
                      "you provided.")
    return Identity(access_key, region, service)


def _rebuild(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
             body: bytes, signed: list[str]) -> AWSRequest:
    url = "http://" + headers.get("host", "localhost") + raw_path
    if raw_query:
        url += "?" + raw_query
    kept = {name: headers[name] for name in signed if name in headers}
    if "x-amz-content-sha256" in headers:
        kept["X-Amz-Content-SHA256"] = headers["x-amz-content-sha256"]
    return AWSRequest(method=method, url=url, headers=kept, data=body)
