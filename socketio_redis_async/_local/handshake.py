"""Node-like handshakes built from a connection's WSGI environ, with secrets left out."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

SENSITIVE_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
DEFAULT_REDACTED_HEADERS = SENSITIVE_HEADERS | {
    "x-access-token",
    "x-amz-security-token",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
}
"""Headers left out of the handshakes that cross Redis, unless ``redact_headers`` says otherwise."""
DEFAULT_REDACTED_QUERY = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "auth",
        "id_token",
        "jwt",
        "password",
        "refresh_token",
        "secret",
        "session",
        "sig",
        "signature",
        "token",
    }
)
"""Query parameters left out of those handshakes (``query`` and ``url``), unless
``redact_query`` says otherwise; matched case-insensitively."""


def _js_date(epoch: float) -> str:
    # What Node's String(new Date()) looks like, in UTC.
    return time.strftime(
        "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", time.gmtime(epoch)
    )


def build_handshake(
    environ: dict[str, Any] | None,
    issued: float,
    auth: Any,
    *,
    redact_headers: frozenset[str] = DEFAULT_REDACTED_HEADERS,
    redact_query: frozenset[str] = DEFAULT_REDACTED_QUERY,
) -> dict[str, Any]:
    """The ``socket.handshake`` a Node server would report for this connection.

    Headers named in ``redact_headers`` (lower case) and query parameters named in
    ``redact_query`` (lower case) are left out, because answers cross Redis in clear text.
    """
    environ = environ or {}
    headers: dict[str, str] = {}
    for name, value in environ.items():
        if name.startswith("HTTP_") and isinstance(value, str):
            header = name[5:].lower().replace("_", "-")
            if header not in redact_headers:
                headers[header] = value
    query_string = environ.get("QUERY_STRING") or ""
    if redact_query and query_string:
        query_string = "&".join(
            item
            for item in query_string.split("&")
            if unquote_plus(item.partition("=")[0]).lower() not in redact_query
        )
    path = environ.get("PATH_INFO") or "/socket.io/"
    address = environ.get("REMOTE_ADDR") or ""
    scope = environ.get("asgi.scope")
    if isinstance(scope, dict) and scope.get("client"):
        address = scope["client"][0]
    return {
        "headers": headers,
        "time": _js_date(issued),
        "address": address,
        "xdomain": "origin" in headers,
        "secure": environ.get("wsgi.url_scheme") in ("https", "wss"),
        "issued": int(issued * 1000),
        "url": path + ("?" + query_string if query_string else ""),
        "query": dict(parse_qsl(query_string)),
        "auth": auth if isinstance(auth, dict) else {},
    }
