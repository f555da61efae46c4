"""The access rules in front of the dashboard's app (ASGI middleware, trio-free)."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import _page
from ._responses import error_response

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Guard:
    """The access rules in front of the app.

    - With a token, every request needs ``Authorization: Bearer <token>``, else 401 (a
      page request gets the small page that asks for the token).
    - Without one (loopback only), the Host header must name this machine, so a web
      page elsewhere cannot reach the API through DNS rebinding.
    - A request that changes something and carries an ``Origin`` must come from this
      origin (no cross-site forms); no CORS headers are ever sent.
    """

    def __init__(self, app: ASGIApp, token: str | None, allowed_hosts: frozenset[str] | None):
        self.app = app
        self.token = token.encode() if token is not None else None
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.allowed_hosts is not None:
            hostname = urlsplit(f"//{host}").hostname or ""
            if hostname not in self.allowed_hosts:
                response: Response = error_response(
                    403, "Forbidden", f"host {host!r} is not this dashboard's address"
                )
                await response(scope, receive, send)
                return
        if self.token is not None:
            given = headers.get("authorization", "")
            scheme, _, credential = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credential.strip().encode(), self.token
            ):
                if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
                    response = HTMLResponse(_page.render_login(), status_code=401)
                else:
                    response = error_response(
                        401,
                        "Unauthorized",
                        "this dashboard needs 'Authorization: Bearer <token>' (the token "
                        "is in the file given to --dashboard-token-file)",
                    )
                response.headers["WWW-Authenticate"] = 'Bearer realm="fastworker"'
                await response(scope, receive, send)
                return
        if scope["method"] not in _SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != host:
                response = error_response(
                    403, "Forbidden", f"cross-origin request from {origin!r} refused"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
