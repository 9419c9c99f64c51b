"""AWS Signature Version 4 verification, header-signed and presigned, in two steps.

`check()` reads what the headers (or the query) declare: algorithm, credential scope, date,
expiry, access key, payload mode. All it refuses is refused before a byte of the body is
read. It returns a `Pending` signature, and `Pending.verify()` takes the SHA-256 of the bytes
actually received, rebuilds the canonical request exactly as the client must have (raw path,
the query re-encoded by RFC 3986, the headers the client listed as signed, the payload hash)
and recomputes the signature; only a byte-identical match passes.

The payload hash is always the hash of the body received, unless the service's
`PayloadPolicy` accepts a literal in its place (S3's UNSIGNED-PAYLOAD; no service berth
serves does today). A declared X-Amz-Content-SHA256 must equal the hash of what arrived.

botocore's signer is the reference: tests check this module computes what
`botocore.auth.SigV4Auth` and `SigV4QueryAuth` compute. It is reimplemented here because
botocore's request objects cost more than the rest of a typical request, and the signing key
is cached per day, region and service.
"""
from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Mapping
from urllib.parse import quote, unquote

from botocore.utils import normalize_url_path

from .errors import ServiceError

MAX_SKEW = 15 * 60                      # seconds a header-signed request's date may be off
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600   # the longest life of a presigned URL (AWS: a week)
ALGORITHM = "AWS4-HMAC-SHA256"

# What X-Amz-Content-SHA256 may say instead of a hash: S3's payload modes.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOADS = frozenset({
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"})

# Looks up the secret of an access key (None: unknown key). Temporary credentials will
# extend what it answers (the session token to compare, the caller it names).
SecretLookup = Callable[[str], str | None]

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_REGION = re.compile(r"[a-z0-9-]{1,64}")
_INTEGER = re.compile(r"-?[0-9]+")

MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.")


@dataclass(frozen=True)
class Identity:
    """Who signed a request. Temporary credentials will add the caller's ARN and the
    session token."""

    access_key: str
    region: str
    service: str


@dataclass(frozen=True)
class PayloadPolicy:
    """The literals a service accepts in place of the body's hash, per service. Every
    service berth serves accepts none: their signatures cover the body. S3 will opt in to
    UNSIGNED-PAYLOAD; its streaming modes need an aws-chunked reader that checks each chunk's
    signature against the seed signature (`Pending.seed`), which berth has not yet."""

    literals: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = self.literals - STREAMING_PAYLOADS - {UNSIGNED_PAYLOAD}
        if unknown:
            raise ValueError(f"not a payload mode: {sorted(unknown)}")
        if self.literals & STREAMING_PAYLOADS:
            raise ValueError("streaming payloads need an aws-chunked reader berth lacks")


BODY_SIGNED = PayloadPolicy()


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


@dataclass(slots=True)
class Pending:
    """A request whose headers passed every check; the signature waits for the body's hash."""

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]
    signed_headers: list[str]
    amz_date: str
    access_key: str
    region: str
    service: str
    secret: str
    given: str                  # the signature the client sent
    presigned: bool
    literal: str | None         # a payload mode the policy accepted, in place of the hash
    declared: str | None        # the X-Amz-Content-SHA256 hash the client declared

    def verify(self, body_sha256: str) -> Identity:
        """Who signed the request, given the SHA-256 (hex) of the body received; or the AWS
        signature error."""
        if self.literal is None and self.declared is not None and self.declared != body_sha256:
            raise _denied("InvalidSignatureException", MISMATCH)
        canonical = canonical_request(
            self.method, self.raw_path, self.raw_query, self.headers, self.signed_headers,
            self.literal or body_sha256, drop_query="X-Amz-Signature" if self.presigned else None)
        if not hmac.compare_digest(self.seed(canonical), self.given):
            raise _denied("InvalidSignatureException", MISMATCH)
        return Identity(self.access_key, self.region, self.service)

    def seed(self, canonical: str) -> str:
        """The signature of a canonical request under this request's key and scope (for a
        streaming payload, the seed its chunk signatures chain from)."""
        return signature(self.secret, self.amz_date, (self.access_key, self.region,
                                                       self.service), canonical)


def verify(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
           lookup_secret: SecretLookup, now: dt.datetime | None = None,
           policy: PayloadPolicy = BODY_SIGNED, service: str | None = None) -> Identity:
    """Check a request whose body is at hand: `check`, then `Pending.verify`."""
    pending = check(method, raw_path, raw_query, headers, lookup_secret, now=now, policy=policy,
                    service=service)
    return pending.verify(hashlib.sha256(body).hexdigest())


def check(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
          lookup_secret: SecretLookup, now: dt.datetime | None = None,
          policy: PayloadPolicy = BODY_SIGNED, service: str | None = None) -> Pending:
    """Everything about the request's signature that its headers and query decide, or the
    AWS error that refuses it. `service` is the signing name the request must be scoped to
    (None: not known yet)."""
    clock = time.time() if now is None else now.timestamp()
    auth = headers.get("authorization")
    if auth:
        fields = _authorization_fields(auth)
        amz_date = headers.get("x-amz-date")
        if not amz_date:
            raise _incomplete("Authorization header requires existence of either a "
                              "'X-Amz-Date' or a 'Date' header.")
        signed_at = _parse_time(amz_date)
        presigned = False
        declared = headers.get("x-amz-content-sha256")
    elif "x-amz-signature=" in raw_query.lower():
        fields, signed_at, amz_date = _query_fields(raw_query, clock)
        presigned = True
        declared = headers.get("x-amz-content-sha256") or fields.get("X-Amz-Content-Sha256")
    else:
        raise _denied("MissingAuthenticationTokenException", "Missing Authentication Token")
    access_key, day, region, scoped_service = _parse_scope(fields["Credential"])
    if day != amz_date[:8]:
        raise _denied("InvalidSignatureException",
                      "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                      f"of date from HTTP: '{day}' != '{amz_date[:8]}', from '{amz_date}'.")
    if service is not None:
        check_scope(scoped_service, service)
    if not presigned:
        _check_skew(amz_date, signed_at, clock)
    secret = lookup_secret(access_key)
    if secret is None:
        raise _denied("UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    literal = None
    if declared is None and presigned and UNSIGNED_PAYLOAD in policy.literals:
        literal = UNSIGNED_PAYLOAD      # S3's presigned URLs sign no payload
    elif declared is not None and declared in policy.literals:
        literal, declared = declared, None
    elif declared is not None and not _HEX_HASH.fullmatch(declared):
        raise _denied("InvalidSignatureException", MISMATCH)
    return Pending(method, raw_path, raw_query, headers, fields["SignedHeaders"].split(";"),
                   amz_date, access_key, region, scoped_service, secret, fields["Signature"],
                   presigned, literal, declared)


def check_scope(scoped: str, service: str) -> None:
    """Refuse a request scoped to another service than the one it calls."""
    if scoped != service:
        raise _denied("InvalidSignatureException",
                      f"Credential should be scoped to correct service: '{service}'. ")


def _authorization_fields(auth: str) -> dict[str, str]:
    algo, _, rest = auth.partition(" ")
    if algo != ALGORITHM:
        raise _incomplete(f"Unsupported authorization type: {algo}")
    fields = {}
    for item in rest.split(","):
        key, _, value = item.strip().partition("=")
        fields[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise _incomplete(f"Authorization header requires '{missing[0]}' parameter.")
    return fields


def _query_fields(raw_query: str, clock: float) -> tuple[dict[str, str], int, str]:
    """A presigned URL's authentication parameters (keyed as in an Authorization header),
    its signing time and date, once its expiry is checked."""
    params: dict[str, str] = {}
    for item in raw_query.split("&"):
        key, _, value = item.partition("=")
        params[unquote(key)] = unquote(value)
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise _incomplete("Unsupported X-Amz-Algorithm.")
    for key in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                "X-Amz-Signature"):
        if not params.get(key):
            raise _incomplete(f"Query-string authentication requires the {key} parameter.")
    amz_date = params["X-Amz-Date"]
    signed_at = _parse_time(amz_date)
    expires = params["X-Amz-Expires"]
    if not _INTEGER.fullmatch(expires):
        raise _incomplete("X-Amz-Expires should be a number")
    if expires.startswith("-"):
        raise _incomplete("X-Amz-Expires must be non-negative")
    if len(expires) > 7 or int(expires) > MAX_PRESIGNED_EXPIRES:
        raise _incomplete("X-Amz-Expires must be less than a week (in seconds); that is, the "
                          f"given X-Amz-Expires must be less than {MAX_PRESIGNED_EXPIRES} "
                          "seconds")
    if signed_at - clock > MAX_SKEW:
        raise _denied("AccessDeniedException", "Request is not valid yet")
    if clock > signed_at + int(expires):
        raise _denied("AccessDeniedException", "Request has expired")
    fields = {"Credential": params["X-Amz-Credential"],
              "SignedHeaders": params["X-Amz-SignedHeaders"],
              "Signature": params["X-Amz-Signature"]}
    if "X-Amz-Content-Sha256" in params:
        fields["X-Amz-Content-Sha256"] = params["X-Amz-Content-Sha256"]
    return fields, signed_at, amz_date


def _check_skew(amz_date: str, signed_at: int, clock: float) -> None:
    if clock - signed_at > MAX_SKEW:
        raise _denied("InvalidSignatureException",
                      f"Signature expired: {amz_date} is now earlier than "
                      f"{_format(clock - MAX_SKEW)} ({_format(clock)} - 15 min.)")
    if signed_at - clock > MAX_SKEW:
        raise _denied("InvalidSignatureException",
                      f"Signature not yet current: {amz_date} is still later than "
                      f"{_format(clock + MAX_SKEW)} ({_format(clock)} + 15 min.)")


def _parse_scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not _REGION.fullmatch(parts[2]):
        raise _incomplete(f"Credential should be scoped to a valid region, not "
                          f"'{credential}'.")
    return parts[0], parts[1], parts[2], parts[3]


@lru_cache(maxsize=64)  # clients sign with the current second: a handful are live at once
def _parse_time(value: str) -> int:
    """An X-Amz-Date (ISO 8601 basic format, UTC) as seconds since the epoch."""
    m = _AMZ_DATE.fullmatch(value)
    try:
        if m is None:
            raise ValueError(value)
        return calendar.timegm(dt.datetime(*map(int, m.groups())).timetuple())
    except ValueError:
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
                          "See http://en.wikipedia.org/wiki/ISO_8601") from None


def _format(seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


def _denied(code: str, message: str) -> ServiceError:
    return ServiceError(code, message, status=403)


def _incomplete(message: str) -> ServiceError:
    return ServiceError("IncompleteSignature", message, status=400)
