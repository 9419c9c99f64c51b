"""CORS, so a browser page using the AWS SDK for JavaScript can call berth directly."""
from __future__ import annotations

ALLOWED_METHODS = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
BASE_ALLOWED_HEADERS = ("authorization, content-type, x-amz-date, x-amz-target, "
                        "x-amz-user-agent, x-amz-security-token, x-amz-content-sha256, "
                        "x-amz-invocation-type, x-amz-log-type, x-amz-client-context, "
                        "amz-sdk-invocation-id, amz-sdk-request")
EXPOSED = ("x-amzn-RequestId, x-amzn-ErrorType, x-amzn-ErrorMessage, x-amz-request-id, "
           "x-amz-function-error, x-amz-log-result, x-amz-executed-version, date, etag")


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return method == "OPTIONS" and "access-control-request-method" in headers


def preflight_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    requested = headers.get("access-control-request-headers", "")
    allowed = BASE_ALLOWED_HEADERS + (", " + requested if requested else "")
    return [
        (b"access-control-allow-origin", headers.get("origin", "*").encode()),
        (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
        (b"access-control-allow-headers", allowed.encode()),
        (b"access-control-max-age", b"86400"),
        (b"vary", b"Origin"),
    ]


def response_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    origin = headers.get("origin")
    if origin is None:
        return []
    return [(b"access-control-allow-origin", origin.encode()),
            (b"access-control-expose-headers", EXPOSED.encode()),
            (b"vary", b"Origin")]
