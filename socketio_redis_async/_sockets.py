"""Sockets as ``fetch_sockets`` returns them, and Node-like handshakes built from WSGI environs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote_plus

from ._protocol.messages import check_event
from ._protocol.rooms import Room

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


class SocketOwner(Protocol):
    """What a RemoteSocket acts through: the adapter."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
    ) -> None: ...

    async def sockets_join(self, rooms: Any, to: Any = None, *, namespace: str = "/") -> None: ...

    async def sockets_leave(self, rooms: Any, to: Any = None, *, namespace: str = "/") -> None: ...

    async def disconnect_sockets(
        self, close: bool = False, to: Any = None, *, namespace: str = "/"
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class RemoteSocket:
    """A socket somewhere in the cluster, as ``fetch_sockets`` found it.

    ``emit``, ``join``, ``leave`` and ``disconnect`` work wherever the socket lives.
    """

    adapter: SocketOwner = field(repr=False, compare=False)
    namespace: str
    id: str
    handshake: dict[str, Any] = field(compare=False)
    rooms: frozenset[Room] = field(compare=False)
    data: Any = field(compare=False)

    @classmethod
    def found(cls, adapter: SocketOwner, namespace: str, socket: dict[str, Any]) -> RemoteSocket:
        """A socket as a server described it (``{id, handshake, rooms, data}``)."""
        handshake = socket.get("handshake")
        return cls(
            adapter,
            namespace,
            socket["id"],
            handshake if isinstance(handshake, dict) else {},
            frozenset(r for r in socket.get("rooms") or () if isinstance(r, (str, int))),
            socket.get("data"),
        )

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to this socket."""
        await self.adapter.emit(check_event(event), tuple(args), self.namespace, to=self.id)

    async def join(self, *rooms: Room) -> None:
        """Make this socket join ``rooms``."""
        await self.adapter.sockets_join(list(rooms), to=self.id, namespace=self.namespace)

    async def leave(self, *rooms: Room) -> None:
        """Make this socket leave ``rooms``."""
        await self.adapter.sockets_leave(list(rooms), to=self.id, namespace=self.namespace)

    async def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket; ``close`` also closes its underlying connection."""
        await self.adapter.disconnect_sockets(close, to=self.id, namespace=self.namespace)
