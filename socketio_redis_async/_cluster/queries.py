"""Asking the cluster: server counts, rooms, sockets, server-side events, custom requests.

Each reads one way: act on local sockets through the local view, then run a round of
requests through the requests layer. What a wire format cannot ask (the sharded protocol
has no SOCKETS or ALL_ROOMS request) is answered from what it can: ``fetch_sockets``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .._protocol import answers, messages
from .._protocol.messages import CUSTOM_REQUEST_EVENT, RequestType
from .._protocol.rooms import Room

if TYPE_CHECKING:
    from .cluster import Cluster


class Queries:
    """Cluster-wide questions of one engine."""

    def __init__(self, cluster: Cluster) -> None:
        self._c = cluster

    async def server_count(self, nsp: str) -> int:
        """How many servers serve ``nsp``; this one only if it serves ``nsp`` itself."""
        c = self._c
        served = c.plan.leased(nsp) or c.keeps(nsp)
        async with c.serving(nsp):
            count = await c.count_servers(nsp)
        return count if served else count - 1

    async def all_rooms(self, nsp: str) -> set[Room]:
        """Every room of every server, socket-id rooms included."""
        c = self._c
        rooms = set(c.local.room_names(nsp))
        if RequestType.ALL_ROOMS not in c.wire.requests:
            for socket in await self._fetch_remote(nsp, [], []):
                rooms.update(_rooms(socket))
            return rooms
        for remote in await c.requests.gather(
            nsp,
            lambda rid: messages.all_rooms_request(c.uid, rid),
            answers.rooms_of,
            what="allRooms",
        ):
            rooms.update(remote)
        return rooms

    async def sids(self, nsp: str, selector: list[Room]) -> list[str]:
        """Sids of the sockets in any of ``selector`` (all if empty), cluster-wide."""
        c = self._c
        sids = [sid for sid, _ in c.local.recipients(nsp, selector, ())]
        if RequestType.SOCKETS not in c.wire.requests:
            if not c.local.only_local_sid(nsp, selector):
                remote = await self._fetch_remote(nsp, selector, [])
                sids.extend(s["id"] for s in remote if isinstance(s.get("id"), str))
            return sids
        for remote in await c.requests.gather(
            nsp,
            lambda rid: messages.sockets_request(c.uid, rid, selector),
            answers.sids_of,
            what="clients",
        ):
            sids.extend(remote)
        return sids

    async def fetch_sockets(
        self, nsp: str, selector: list[Room], excluded: list[Room], local: bool
    ) -> list[dict[str, Any]]:
        """``{id, handshake, rooms, data}`` of the matching sockets, this server's first."""
        c = self._c
        found = c.local.describe(nsp, c.local.recipients(nsp, selector, excluded))
        if not local and not c.local.only_local_sid(nsp, selector):
            found.extend(await self._fetch_remote(nsp, selector, excluded))
        return found

    async def _fetch_remote(
        self, nsp: str, selector: list[Room], excluded: list[Room]
    ) -> list[dict[str, Any]]:
        c = self._c
        found: list[dict[str, Any]] = []
        for remote in await c.requests.gather(
            nsp,
            lambda rid: messages.fetch_request(c.uid, rid, selector, excluded),
            answers.sockets_of,
            what="fetchSockets",
        ):
            found.extend(remote)
        return found

    async def holds(self, nsp: str, sid: str) -> bool:
        """Whether some other server holds socket ``sid`` (asked with fetch_sockets)."""
        return bool(await self._fetch_remote(nsp, [sid], []))

    async def custom_request(self, nsp: str, data: Any) -> list[Any]:
        """Every server's ``custom_hook(data)`` answer, this server's first."""
        c = self._c
        own = c.custom_hook(data) if c.custom_hook else None
        if inspect.isawaitable(own):
            own = await own
        return [
            own,
            *await c.requests.gather(
                nsp,
                lambda rid: messages.server_side_emit_request(
                    c.uid, [CUSTOM_REQUEST_EVENT, data], rid
                ),
                answers.data_of,
                what="customRequest",
            ),
        ]

    async def server_side_emit(self, nsp: str, data: list[Any]) -> None:
        """Send ``[event, *args]`` to the other servers' handlers."""
        c = self._c
        await c.publish_request(nsp, messages.server_side_emit_request(c.uid, data))

    async def server_side_emit_with_ack(
        self, nsp: str, data: list[Any], timeout: float | None
    ) -> list[Any]:
        """Send ``[event, *args]`` to the other servers and return each one's answer."""
        c = self._c
        return await c.requests.gather(
            nsp,
            lambda rid: messages.server_side_emit_request(c.uid, data, rid),
            answers.data_of,
            what=None,
            timeout=timeout,
        )


def _rooms(socket: dict[str, Any]) -> list[Room]:
    return [r for r in socket.get("rooms") or () if isinstance(r, (str, int))]
