"""Broadcasts, with and without acks: local sockets first, then the other servers.

Each reads one way: deliver to the matching local sockets, then encode with the wire
format and publish (or, with acks, collect them through the requests layer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._protocol import messages
from .._protocol.rooms import Room
from . import bridge

if TYPE_CHECKING:
    from .._protocol.wire import Outgoing
    from .cluster import Cluster
    from .requests import AckCollector


class Broadcasts:
    """Broadcasts of one engine."""

    def __init__(self, cluster: Cluster) -> None:
        self._c = cluster

    async def broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
        local: bool,
    ) -> None:
        """Deliver to local sockets, then publish for the other servers (unless ``local``
        or the one room is a local socket's own)."""
        c = self._c
        out = None
        volatile = flags.get("volatile") is True
        if not local and (c.offsets is not None or not c.local.only_local_sid(nsp, rooms)):
            channels = c.plan.channels_of(nsp)
            out = c.wire.broadcast(c.uid, channels, data, rooms, except_rooms, flags)
            c.transport.check_size(out.payload)
            if c.offsets is not None and out.fields is not None and not volatile:
                await self._with_offset(nsp, data, rooms, except_rooms, out)
                return
        recipients = c.local.recipients(nsp, rooms, except_rooms)
        await c.delivery.deliver(nsp, data, recipients, volatile=volatile)
        if out is not None:
            await c.send(out, queued=True)
            if c.bridge is not None:
                await c.bridge.publish(bridge.emit_message(nsp, data, rooms, except_rooms))

    async def _with_offset(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        out: Outgoing,
    ) -> None:
        """Connection-state recovery: append to the stream first, then deliver locally with
        the entry id appended to the packet (as Node does); without it if the append
        failed, and the caller gets the error."""
        c = self._c
        assert c.offsets is not None
        try:
            entry_id = await c.send(out)
        except Exception:
            recipients = c.local.recipients(nsp, rooms, except_rooms)
            await c.delivery.deliver(nsp, data, recipients)
            raise
        assert entry_id is not None
        recipients = c.local.recipients(nsp, rooms, except_rooms)
        c.offsets.sent_locally(out.target, entry_id)
        await c.delivery.deliver(nsp, [*data, entry_id.decode()], recipients)

    async def with_callback(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        callback: Callable[..., Any],
        local: bool,
    ) -> None:
        """python-socketio's ``emit(callback=...)``: local sockets get per-socket ack ids,
        the other servers a BROADCAST (7) request whose acks call ``callback``."""
        c = self._c
        request = None
        if not local and not c.local.only_local_sid(nsp, rooms):
            single = len(rooms) == 1 and not except_rooms
            # The acks come back on this namespace's response channels: serve it until the
            # entry expires.
            channels = c.plan.hold(nsp)
            request_id: str = c.requests.acks.add(
                callback,
                c.options.ack_timeout,
                single=single,
                on_discard=lambda: c.unhold(nsp),
            )
            flags: dict[str, Any] = {"timeout": int(c.options.ack_timeout * 1000)}
            if single:
                flags["expectSingleResponse"] = True
            request = messages.broadcast_request(
                c.uid, request_id, nsp, data, rooms, except_rooms, flags
            )
        recipients = c.local.recipients(nsp, rooms, except_rooms)
        await c.delivery.deliver_with_acks(nsp, data, recipients, callback)
        if request is None:
            return
        try:
            await c.transport.confirm([channels.response, channels.response_for(c.uid)])
            await c.publish_request(nsp, request)
        except BaseException:
            c.requests.acks.discard(request_id)
            raise
        if c.bridge is not None and len(rooms) == 1 and isinstance(rooms[0], str):
            # python-socketio's callback: the old server acks with a `callback` message
            # addressed to this server; the entry expires like a local one.
            ack_id = c.host._generate_ack_id(rooms[0], callback)
            c.delivery.expire_acks([(rooms[0], ack_id)], c.options.ack_timeout)
            await c.bridge.publish(
                bridge.emit_message(nsp, data, rooms, except_rooms, [rooms[0], nsp, ack_id])
            )

    async def with_acks(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        wait: float,
    ) -> list[Any]:
        """Node's ``io.timeout(ms).emit(ev, cb)``: every matching client's first ack
        argument, cluster-wide; RequestTimeoutError with the acks received so far."""
        c = self._c

        async def deliver(collector: AckCollector, request_id: str) -> None:
            if servers > 1:
                flags = {"timeout": int(wait * 1000)}
                request = messages.broadcast_request(
                    c.uid, request_id, nsp, data, rooms, except_rooms, flags
                )
                await c.publish_request(nsp, request)
            recipients = c.local.recipients(nsp, rooms, except_rooms)
            await c.delivery.deliver_with_acks(nsp, data, recipients, collector.on_ack)
            collector.on_count(len(recipients), c.uid)

        async with c.serving(nsp):
            only_local = c.local.only_local_sid(nsp, rooms)
            servers = 1 if only_local else await c.count_servers(nsp)
            return await c.requests.collect_acks(nsp, servers, wait, deliver)
