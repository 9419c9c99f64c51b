"""The web console: a static page served under /console/ on the API's own port.

The page signs its API calls itself with keys the user pastes in, so this app only serves
files; it knows no secret. Every response carries a strict Content-Security-Policy: scripts,
styles and API calls come from this origin only, and forms never submit anywhere.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

PREFIX = "/console"
STATIC_DIR = Path(__file__).parent / "static"

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy",
     (b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
      b"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # Revalidate on every load (cheap: ETag/If-None-Match), so an upgraded berth is seen.
    (b"cache-control", b"no-cache"),
]


def console_app() -> ASGIApp:
    """The ASGI app for paths under PREFIX (the full path, as the API app passes it on);
    `/console` itself redirects to `/console/`."""
    # Starlette (not a bare Router) so StaticFiles' 404s become responses, not errors.
    site = Starlette(routes=[Mount(PREFIX, app=StaticFiles(directory=STATIC_DIR, html=True))])

    async def app(scope: Scope, receive: Callable[[], Awaitable[Message]],
                  send: Callable[[Message], Awaitable[None]]) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", [])
                           if h[0].lower() != b"cache-control"]
                message = {**message, "headers": headers + SECURITY_HEADERS}
            await send(message)

        await site(scope, receive, send_with_headers)

    return app
