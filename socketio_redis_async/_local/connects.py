"""Seeing the CONNECT packets python-socketio hides from its manager.

python-socketio hands a CONNECT's payload (the client's ``auth``) only to the app's
``connect`` handler; Node reports it in ``fetchSockets()``'s ``handshake.auth``. The
adapter wraps Engine.IO's public ``message`` handler, which notes the payload of a
CONNECT for the duration of python-socketio's own handling of it.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

Connects = dict[str, tuple[str, Any]]
"""eio sid -> (namespace, auth) of the CONNECT being handled."""

Leaving = set[tuple[str, str]]
"""(eio sid, namespace) of each DISCONNECT packet from a client being handled: python-
socketio reports it as ``client disconnect``, like a closed transport."""


def watch_connects(
    server: Any, connects: Connects, logger: logging.Logger, leaving: Leaving | None = None
) -> None:
    """Note each CONNECT's namespace and auth in ``connects``, and each DISCONNECT's in
    ``leaving``, while python-socketio handles it."""
    eio = getattr(server, "eio", None)
    handlers = getattr(eio, "handlers", None)
    original = handlers.get("message") if isinstance(handlers, dict) else None
    if eio is None or original is None or not inspect.iscoroutinefunction(original):
        logger.warning("cannot see this server's CONNECT packets; handshake.auth will be {}")
        return

    async def on_message(eio_sid: str, data: Any) -> Any:
        if leaving is not None and isinstance(data, str) and data[:1] == "1":
            nsp = (data[1:].split(",", 1)[0] or "/") if data[1:2] == "/" else "/"
            leaving.add((eio_sid, nsp))
            try:
                return await original(eio_sid, data)
            finally:
                leaving.discard((eio_sid, nsp))
        if not (isinstance(data, str) and data[:1] == "0"):
            return await original(eio_sid, data)
        try:
            pkt = server.packet_class(encoded_packet=data)
        except Exception:  # malformed: python-socketio's handler deals with it
            return await original(eio_sid, data)
        connects[eio_sid] = (pkt.namespace or "/", pkt.data)
        try:
            return await original(eio_sid, data)
        finally:
            connects.pop(eio_sid, None)

    eio.on("message", on_message)
