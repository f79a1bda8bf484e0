"""Recovery test servers: streams servers with connection-state recovery, reached by real
Node clients through a proxy that can cut and re-route their connections."""

from __future__ import annotations

from typing import Any

from socketio_redis_async import ConnectionStateRecovery
from tests.helpers import Node
from tests.streams import start_streams


async def start_recovering(url: str, key: str, window: float = 5.0, **options: Any) -> Node:
    """A Python streams server with recovery on, and a ``whoami`` event answering
    ``{sid, recovered, rooms, data}`` (python-socketio's view of the caller)."""
    node = await start_streams(
        url, key, connection_state_recovery=ConnectionStateRecovery(window), **options
    )
    sio, adapter = node.sio, node.adapter

    @sio.on("whoami")
    async def whoami(sid: str) -> dict[str, Any]:
        return {
            "sid": sid,
            "recovered": adapter.recovered(sid),
            "rooms": sorted(str(r) for r in sio.rooms(sid)),
            "data": adapter.get_socket_data(sid),
        }

    return node
