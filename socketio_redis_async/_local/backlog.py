"""Slow consumers: how far behind a client connection is, and how to cut one loose.

python-engineio keeps one asyncio queue per connection (``server.eio.sockets[eio_sid]
.queue``); a writer task empties it into the transport. A client that stops reading
blocks that writer, and the queue then grows with every packet sent to it.
"""

from __future__ import annotations

from typing import Any

VOLATILE_BACKLOG = 16
"""A volatile packet skips a connection with this many packets waiting to be written."""

DEFAULT_MAX_SOCKET_BACKLOG = 10_000
"""Packets waiting for one connection above which it is disconnected as a slow consumer."""

CHECK_EVERY = 16
"""Deliveries between two backlog checks (volatile ones are always checked): the check
costs about as much as the rest of the delivery path, and a queue can overshoot the limit
by the packets of at most this many deliveries."""


class _NoQueue:
    @staticmethod
    def qsize() -> int:
        return 0


_NO_QUEUE = _NoQueue()


def backlog(sock: Any) -> int:
    """Packets waiting in an Engine.IO connection's queue (0 for a gone connection)."""
    waiting: int = getattr(sock, "queue", _NO_QUEUE).qsize()
    return waiting


def check_backlog(value: Any) -> int | None:
    """Validate ``max_socket_backlog``: a number of packets, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"max_socket_backlog must be an int number of packets or None, "
            f"not {type(value).__name__}"
        )
    if value < 1:
        raise ValueError(f"max_socket_backlog must be >= 1 packet (or None), not {value}")
    return value


async def abort_connection(server: Any, eio_sid: str) -> None:
    """Close a slow consumer's connection without writing to it.

    Its queued packets are discarded at once (that is the memory), the app's
    ``disconnect`` handlers run with reason "server disconnect", and under aiohttp the
    TCP connection is aborted; elsewhere it ends when the client's ping timeout closes
    it, and only the packet batch the blocked writer holds stays in memory until then.
    """
    sock = server.eio.sockets.get(eio_sid)
    if sock is None or sock.closed or sock.closing:
        return
    environ = server.environ.get(eio_sid) or {}
    queue = sock.queue
    while not queue.empty():
        queue.get_nowait()
        queue.task_done()
    transport = getattr(environ.get("aiohttp.request"), "transport", None)
    if transport is not None:
        transport.abort()
    await sock.close(wait=False, abort=True, reason=server.eio.reason.SERVER_DISCONNECT)
    queue.put_nowait(None)  # python-engineio's "stop" for a writer waiting for packets
    server.eio.sockets.pop(eio_sid, None)
