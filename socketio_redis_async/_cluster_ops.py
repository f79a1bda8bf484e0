"""Broadcasting and acting on sockets, wherever they are, cluster-wide.

Each method reads one way: validate the arguments, act on local sockets through the
``LocalView``, then build the request with the protocol layer and publish it (or, for
broadcasts with acks, collect the acks through the requests layer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._cluster import bridge
from ._cluster_api import ClusterAPI
from ._operator import BroadcastOperator, RoomArg, check_namespace, rooms_of
from ._options import check_bool, check_seconds
from ._protocol import answers, messages
from ._protocol.messages import check_event
from ._protocol.rooms import Room, check_room

if TYPE_CHECKING:
    from ._cluster.requests import AckCollector


class ClusterOps(ClusterAPI):
    """Broadcasts (with and without acks) and socket operations across the cluster."""

    # -- broadcasting -------------------------------------------------------------------

    def of(self, namespace: str) -> BroadcastOperator:
        """Start a broadcast in ``namespace``."""
        return BroadcastOperator(nsp=check_namespace(namespace), _target=self)

    def to(self, *rooms: RoomArg) -> BroadcastOperator:
        """Start a broadcast to these rooms of namespace ``/``."""
        return self.of("/").to(*rooms)

    def in_(self, *rooms: RoomArg) -> BroadcastOperator:
        """Alias of :meth:`to`."""
        return self.to(*rooms)

    def except_(self, *rooms: RoomArg) -> BroadcastOperator:
        """Start a broadcast to namespace ``/`` that skips these rooms."""
        return self.of("/").except_(*rooms)

    async def _broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
        local: bool,
    ) -> None:
        payload = None
        if not local and not self._local.only_local_sid(nsp, rooms):
            payload = self._encode_broadcast(nsp, data, rooms, except_rooms, flags)
            self._transport.check_size(payload)
        recipients = self._local.recipients(nsp, rooms, except_rooms)
        await self._delivery.deliver(nsp, data, recipients, volatile=flags.get("volatile") is True)
        if payload is not None:
            await self._publish(self._broadcast_channel(nsp, rooms), payload)
            if self._bridge is not None:
                await self._bridge.publish(bridge.emit_message(nsp, data, rooms, except_rooms))

    def _encode_broadcast(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        flags: dict[str, Any],
    ) -> bytes:
        return messages.encode_broadcast(self.uid, nsp, data, rooms, except_rooms, flags)

    def _broadcast_channel(self, nsp: str, rooms: list[Room]) -> str:
        return self._plan.channels_of(nsp).for_rooms(rooms)

    async def _emit_with_callback(
        self,
        nsp: str,
        data: list[Any],
        rooms: list[Room],
        except_rooms: list[Room],
        callback: Callable[..., Any],
        local: bool,
    ) -> None:
        """Local sockets get per-socket ack ids; remote ones a BROADCAST (7) request."""
        request = None
        if not local and not self._local.only_local_sid(nsp, rooms):
            single = len(rooms) == 1 and not except_rooms
            # The acks come back on this namespace's response channels: serve it until the
            # entry expires.
            channels = self._plan.hold(nsp)
            request_id: str = self._requests.acks.add(
                callback,
                self._options.ack_timeout,
                single=single,
                on_discard=lambda: self._unhold(nsp),
            )
            flags: dict[str, Any] = {"timeout": int(self._options.ack_timeout * 1000)}
            if single:
                flags["expectSingleResponse"] = True
            request = messages.broadcast_request(
                self.uid, request_id, nsp, data, rooms, except_rooms, flags
            )
        recipients = self._local.recipients(nsp, rooms, except_rooms)
        await self._delivery.deliver_with_acks(nsp, data, recipients, callback)
        if request is not None:
            try:
                await self._transport.confirm([channels.response, channels.response_for(self.uid)])
                await self._publish_request(nsp, request)
            except BaseException:
                self._requests.acks.discard(request_id)
                raise
            if self._bridge is not None and len(rooms) == 1 and isinstance(rooms[0], str):
                # python-socketio's callback: the old server acks with a `callback` message
                # addressed to this server; the entry expires like a local one.
                ack_id = self._generate_ack_id(rooms[0], callback)
                self._delivery.expire_acks([(rooms[0], ack_id)], self._options.ack_timeout)
                await self._bridge.publish(
                    bridge.emit_message(nsp, data, rooms, except_rooms, [rooms[0], nsp, ack_id])
                )

    async def emit_with_ack(
        self,
        event: str,
        data: Any = None,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        timeout: float | None = None,
        namespace: str = "/",
    ) -> list[Any]:
        """Emit to every matching client of the cluster and return all their acks.

        Node's ``io.timeout(ms).emit(ev, cb)``. Each ack is the client's first ack argument.
        Raises RequestTimeoutError("operation has timed out") with the acks received so far.
        """
        check_event(event)
        wait = check_seconds("timeout", timeout) if timeout is not None else self.requests_timeout
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        rooms, excluded = list(rooms_of(to)), list(rooms_of(except_rooms))
        packet_data = [event, *args]

        async def deliver(collector: AckCollector, request_id: str) -> None:
            if servers > 1:
                flags = {"timeout": int(wait * 1000)}
                request = messages.broadcast_request(
                    self.uid, request_id, namespace, packet_data, rooms, excluded, flags
                )
                await self._publish_request(namespace, request)
            recipients = self._local.recipients(namespace, rooms, excluded)
            await self._delivery.deliver_with_acks(
                namespace, packet_data, recipients, collector.on_ack
            )
            collector.on_count(len(recipients), self.uid)

        async with self.serving(namespace):
            only_local = self._local.only_local_sid(namespace, rooms)
            servers = 1 if only_local else await self.count_servers(namespace)
            return await self._requests.collect_acks(namespace, servers, wait, deliver)

    # -- acting on sockets wherever they are --------------------------------------------

    async def sockets_join(
        self,
        rooms: RoomArg,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> None:
        """Make the matching sockets of the cluster join ``rooms`` (Node's ``socketsJoin``).

        ``local=True`` acts on this server's sockets only."""
        await self._sockets_rooms(True, rooms, to, except_rooms, namespace, local)

    async def sockets_leave(
        self,
        rooms: RoomArg,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> None:
        """Make the matching sockets of the cluster leave ``rooms`` (Node's ``socketsLeave``).

        ``local=True`` acts on this server's sockets only."""
        await self._sockets_rooms(False, rooms, to, except_rooms, namespace, local)

    async def _sockets_rooms(
        self,
        join: bool,
        rooms: RoomArg,
        to: RoomArg | None,
        except_rooms: RoomArg | None,
        namespace: str,
        local: bool,
    ) -> None:
        check_bool("local", local)
        target, selector = list(rooms_of(rooms)), list(rooms_of(to))
        excluded = list(rooms_of(except_rooms))
        self._local.apply_rooms(namespace, join, selector, excluded, target)
        if not local and not self._local.only_local_sid(namespace, selector):
            request = messages.rooms_request(self.uid, join, selector, excluded, target)
            await self._publish_request(namespace, request)
        if join:
            await self._transport.confirm(self._plan.room_channels(namespace, target))

    async def disconnect_sockets(
        self,
        close: bool = False,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> None:
        """Disconnect the matching sockets of the cluster; ``close`` closes their connection.

        ``local=True`` acts on this server's sockets only."""
        check_bool("local", local)
        selector, excluded = list(rooms_of(to)), list(rooms_of(except_rooms))
        targets = self._local.recipients(namespace, selector, excluded)
        if not local and not self._local.only_local_sid(namespace, selector):
            request = messages.disconnect_request(self.uid, selector, excluded, close)
            await self._publish_request(namespace, request)
        await self._local.disconnect(namespace, targets, close)

    async def remote_join(self, sid: str, room: Room, *, namespace: str = "/") -> None:
        """Make socket ``sid`` join ``room``; raise RequestTimeoutError if no server holds it."""
        await self._remote_socket_rooms(True, sid, check_room(room), namespace)

    async def remote_leave(self, sid: str, room: Room, *, namespace: str = "/") -> None:
        """Make socket ``sid`` leave ``room``; raise RequestTimeoutError if no server holds it."""
        await self._remote_socket_rooms(False, sid, check_room(room), namespace)

    async def _remote_socket_rooms(self, join: bool, sid: str, room: Room, namespace: str) -> None:
        if self._local.is_local(sid, namespace):
            self._local.apply_rooms(namespace, join, [sid], (), [room])
            return
        await self._requests.gather(
            namespace,
            lambda rid: messages.socket_rooms_request(self.uid, rid, join, sid, room),
            answers.nothing,
            what="remoteJoin" if join else "remoteLeave",
            expected=1,
        )

    async def remote_disconnect(
        self, sid: str, close: bool = False, *, namespace: str = "/"
    ) -> None:
        """Disconnect socket ``sid``; raise RequestTimeoutError if no server holds it."""
        eio_sid = self._local.owner_of(sid, namespace)
        if eio_sid is not None:
            await self._local.disconnect(namespace, [(sid, eio_sid)], close)
            return
        await self._requests.gather(
            namespace,
            lambda rid: messages.socket_disconnect_request(self.uid, rid, sid, close),
            answers.nothing,
            what="remoteDisconnect",
            expected=1,
        )

    def set_socket_data(self, sid: str, data: Any, *, namespace: str = "/") -> None:
        """Set the ``data`` that ``fetch_sockets`` reports for a local socket (socket.data)."""
        info = self._local.info.get((namespace, sid))
        if info is None:
            raise KeyError(
                f"socket {sid!r} is not connected to this server in namespace {namespace!r}"
            )
        info[1] = data

    def get_socket_data(self, sid: str, *, namespace: str = "/") -> Any:
        """The ``data`` of a local socket (None until set)."""
        info = self._local.info.get((namespace, sid))
        return None if info is None else info[1]
