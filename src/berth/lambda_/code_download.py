"""GetFunction's Code.Location: short-lived signed URLs and the ASGI app that serves them.

A URL is `{endpoint}/_berth/lambda/code/<hex sha256>.<expires>.<signature>`; the signature is
an HMAC over the digest and the expiry, keyed from the server's secret key, so any replica
with the same keys can serve it and nobody can forge or extend one.
"""
from __future__ import annotations

import asyncio

import hashlib
import hmac
import re
import time
from typing import Any, Awaitable, Callable

from starlette.responses import FileResponse, Response

from ..config import Settings
from ..state.store import Store
from .code import CodeStore

PREFIX = "/_berth/lambda/"
CODE_PATH = PREFIX + "code/"
URL_TTL = 600       # seconds, as long as AWS's presigned Code.Location

_TOKEN = re.compile(r"(?P<hex>[0-9a-f]{64})\.(?P<expires>\d{1,12})\.(?P<sig>[0-9a-f]{64})")

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]],
                   Awaitable[None]]


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"berth/lambda/code-url", hashlib.sha256).digest()


def _signature(secret_key: str, hex_digest: str, expires: int) -> str:
    return hmac.new(_key(secret_key), f"{hex_digest}.{expires}".encode(),
                    hashlib.sha256).hexdigest()


def code_url(endpoint: str, secret_key: str, hex_digest: str, ttl: int = URL_TTL,
             now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + ttl)
    return (f"{endpoint}{CODE_PATH}{hex_digest}.{expires}."
            f"{_signature(secret_key, hex_digest, expires)}")


def verify_token(secret_key: str, token: str, now: float | None = None) -> str | None:
    """The digest a token grants, or None if it is malformed, forged or expired."""
    m = _TOKEN.fullmatch(token)
    if m is None:
        return None
    expected = _signature(secret_key, m["hex"], int(m["expires"]))
    if not hmac.compare_digest(expected, m["sig"]):
        return None
    if int(m["expires"]) < (now if now is not None else time.time()):
        return None
    return m["hex"]


def _denied(message: str, status: int = 403) -> Response:
    code = {403: "AccessDenied", 404: "NoSuchKey"}.get(status, "MethodNotAllowed")
    body = f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>" \
           f"<Message>{message}</Message></Error>"
    return Response(body, status_code=status, media_type="application/xml")


def code_download_app(settings: Settings, store: Store) -> ASGIApp:
    """The app for `/_berth/lambda/` paths: GET or HEAD of a signed code URL streams the zip."""
    code = CodeStore(settings.data_dir, store)

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            response: Response = _denied("Only GET and HEAD are allowed.", 405)
        elif not path.startswith(CODE_PATH):
            response = _denied("The specified key does not exist.", 404)
        else:
            hex_digest = verify_token(settings.secret_key or "", path[len(CODE_PATH):])
            target = await asyncio.to_thread(code.local, hex_digest) if hex_digest else None
            if hex_digest is None:
                response = _denied("Request has expired or its signature does not match.")
            elif target is None:
                response = _denied("The specified key does not exist.", 404)
            else:
                response = FileResponse(target, media_type="application/zip",
                                        filename=f"{hex_digest}.zip")
        await response(scope, receive, send)

    return app
