"""``ClusterAPI``: Node's cluster API on the python-socketio facade, one delegation each.

``fetch_sockets``, ``sockets_join``, ``server_side_emit``... validate their arguments and
call the engine's parts (``broadcasts``, ``queries``, ``sockets``); nothing here talks to
a transport or a wire format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._manager import ClusterManager
from ._operator import BroadcastOperator, RoomArg, check_namespace, packet_data, rooms_of
from ._options import check_bool, check_seconds
from ._protocol.messages import check_event
from ._protocol.rooms import Room, check_room
from ._recovery import host as recovery_host
from ._recovery.options import ConnectionStateRecovery
from ._recovery.recovery import Recovery
from ._recovery.replay import replayable
from ._recovery.sessions import Session, encode_session
from ._recovery.store import SessionStore
from ._sockets import RemoteSocket


class ClusterAPI(ClusterManager):
    """The python-socketio facade with Node's adapter and server methods."""

    # -- the cluster API (Node's adapter and server methods) ----------------------------

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
        await self._engine.broadcasts.broadcast(nsp, data, rooms, except_rooms, flags, local)

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
        rooms, excluded = list(rooms_of(to)), list(rooms_of(except_rooms))
        return await self._engine.broadcasts.with_acks(
            namespace, packet_data(event, data), rooms, excluded, wait
        )

    async def sockets_join(
        self,
        rooms: RoomArg,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> None:
        """Make the matching sockets of the cluster join ``rooms`` (Node's ``socketsJoin``);
        ``local=True``: this server's sockets only."""
        await self._rooms(True, rooms, to, except_rooms, namespace, local)

    async def sockets_leave(
        self,
        rooms: RoomArg,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> None:
        """Make the matching sockets of the cluster leave ``rooms`` (Node's ``socketsLeave``);
        ``local=True``: this server's sockets only."""
        await self._rooms(False, rooms, to, except_rooms, namespace, local)

    async def _rooms(
        self,
        join: bool,
        rooms: RoomArg,
        to: RoomArg | None,
        except_rooms: RoomArg | None,
        namespace: str,
        local: bool,
    ) -> None:
        check_bool("local", local)
        selector, excluded = list(rooms_of(to)), list(rooms_of(except_rooms))
        target = list(rooms_of(rooms))
        await self._engine.sockets.rooms(namespace, join, selector, excluded, target, local)

    async def disconnect_sockets(
        self,
        close: bool = False,
        to: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> None:
        """Disconnect the matching sockets of the cluster; ``close`` closes their connection;
        ``local=True``: this server's sockets only."""
        check_bool("local", local)
        selector, excluded = list(rooms_of(to)), list(rooms_of(except_rooms))
        await self._engine.sockets.disconnect(namespace, close, selector, excluded, local)

    async def remote_join(self, sid: str, room: Room, *, namespace: str = "/") -> None:
        """Make socket ``sid`` join ``room``; raise RequestTimeoutError if no server holds it."""
        await self._engine.sockets.socket_rooms(namespace, True, sid, check_room(room))

    async def remote_leave(self, sid: str, room: Room, *, namespace: str = "/") -> None:
        """Make socket ``sid`` leave ``room``; raise RequestTimeoutError if no server holds it."""
        await self._engine.sockets.socket_rooms(namespace, False, sid, check_room(room))

    async def remote_disconnect(
        self, sid: str, close: bool = False, *, namespace: str = "/"
    ) -> None:
        """Disconnect socket ``sid``; raise RequestTimeoutError if no server holds it."""
        await self._engine.sockets.socket_disconnect(namespace, sid, close)

    def set_socket_data(self, sid: str, data: Any, *, namespace: str = "/") -> None:
        """Set the ``data`` that ``fetch_sockets`` reports for a local socket (socket.data)."""
        info = self._engine.local.info.get((namespace, sid))
        if info is None:
            raise KeyError(
                f"socket {sid!r} is not connected to this server in namespace {namespace!r}"
            )
        if self._recovery is not None:
            encode_session(Session(sid, "", [], data))  # TypeError: it could not be stored
            self._recovery.changed(namespace, sid)
        info[1] = data

    def _recover_connections(
        self,
        settings: ConnectionStateRecovery,
        store: SessionStore,
        *,
        key_prefix: str,
        stream_of: Callable[[str], str],
        offset: Callable[[str], bytes | None],
        max_len: int,
    ) -> None:
        """Turn connection-state recovery on (before or after the server is attached);
        ``offset(stream)``: where the transport started reading ``stream``."""
        engine = self._engine
        positions = engine.receiver.positions

        def snapshot(nsp: str, sid: str) -> tuple[list[Any], Any] | None:
            info = engine.local.info.get((nsp, sid))
            rooms = self.get_rooms(sid, nsp)
            return None if info is None else ([r for r in rooms if r is not None], info[1])

        self._recovery = Recovery(
            settings,
            store,
            key_prefix=key_prefix,
            stream_of=stream_of,
            position=lambda s: positions.get(s.encode()) or offset(s),
            decode=replayable,
            uid=lambda: engine.uid,
            snapshot=snapshot,
            timeout=self._options.requests_timeout,
            max_entries=2 * max_len + 1000,
            logger=self.logger,
        )
        engine.add_offsets(self._recovery)
        if self.server is not None:  # attached already: check and hook it now
            recovery_host.check(self.server, self._recovery.pid_of)

    @property
    def stats(self) -> dict[str, int]:
        """Counters for monitoring: dropped messages, reconnects, subscriptions, pending
        acks, and with connection-state recovery its own (``recovered_sessions``...)."""
        stats = self._engine.stats()
        return stats if self._recovery is None else {**stats, **self._recovery.stats()}

    def recovered(self, sid: str, *, namespace: str = "/") -> bool:
        """Whether local socket ``sid`` got its session back (connection-state recovery):
        the same sid, rooms and data, and the packets it missed, already sent. The
        ``connect`` handler can ask it."""
        return self._recovery is not None and self._recovery.is_recovered(namespace, sid)

    def get_socket_data(self, sid: str, *, namespace: str = "/") -> Any:
        """The ``data`` of a local socket (None until set)."""
        info = self._engine.local.info.get((namespace, sid))
        return None if info is None else info[1]

    async def server_count(self, *, namespace: str = "/") -> int:
        """How many servers serve ``namespace`` (NUMSUB of its request channel); this one
        counts only if it serves ``namespace`` (local sockets or handlers)."""
        return await self._engine.queries.server_count(namespace)

    async def all_rooms(self, *, namespace: str = "/") -> set[Room]:
        """Every room of every server, socket-id rooms included (Node's ``allRooms()``)."""
        return await self._engine.queries.all_rooms(namespace)

    async def clients(self, rooms: RoomArg | None = None, *, namespace: str = "/") -> list[str]:
        """Sids of the sockets in any of ``rooms`` (all sockets if None), cluster-wide."""
        return await self._engine.queries.sids(namespace, list(rooms_of(rooms)))

    async def client_rooms(self, sid: str, *, namespace: str = "/") -> set[Room] | None:
        """The rooms of socket ``sid`` wherever it lives; None if no server holds it."""
        if self._engine.local.is_local(sid, namespace):
            return set(self.get_rooms(sid, namespace))
        found = await self.fetch_sockets(sid, namespace=namespace)
        return set(found[0].rooms) if found else None

    async def fetch_sockets(
        self,
        rooms: RoomArg | None = None,
        except_rooms: RoomArg | None = None,
        *,
        namespace: str = "/",
        local: bool = False,
    ) -> list[RemoteSocket]:
        """The sockets in ``rooms`` (all if None) and in no ``except_rooms``, cluster-wide.

        Each has ``id``, ``handshake``, ``rooms`` and ``data``, and ``emit``, ``join``,
        ``leave`` and ``disconnect`` methods that work wherever it lives.
        ``local=True`` returns this server's sockets only (Node's ``io.local.fetchSockets()``).
        Raises RequestTimeoutError if a server does not answer in time, AnswerTooLargeError
        if a server's answer would exceed its ``max_answer_size``.
        """
        check_bool("local", local)
        selector, excluded = list(rooms_of(rooms)), list(rooms_of(except_rooms))
        found = await self._engine.queries.fetch_sockets(namespace, selector, excluded, local)
        return [RemoteSocket.found(self, namespace, socket) for socket in found]

    async def custom_request(self, data: Any, *, namespace: str = "/") -> list[Any]:
        """Every server's ``custom_hook(data)`` answer, this server's first.

        Travels as SERVER_SIDE_EMIT with ack of the event ``CUSTOM_REQUEST_EVENT``, so a
        Node server answers with ``io.on("__socketio_redis_custom_request__", (d, cb) => cb(x))``.
        """
        return await self._engine.queries.custom_request(namespace, data)

    def on(
        self, event: str, handler: Callable[..., Any] | None = None, *, namespace: str = "/"
    ) -> Any:
        """Register a handler for ``server_side_emit(event, ...)`` from other servers.

        The handler gets the event's arguments; what it returns (or its coroutine returns)
        is the answer to ``server_side_emit_with_ack``. Usable as a decorator.
        """
        check_event(event)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._engine.handlers[(namespace, event)] = fn
            self._engine.plan.ensure(namespace)  # kept while it has handlers
            return fn

        return register if handler is None else register(handler)

    async def server_side_emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Send an event to the other servers' handlers (never to this server's)."""
        await self._engine.queries.server_side_emit(namespace, [check_event(event), *args])

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, namespace: str = "/", timeout: float | None = None
    ) -> list[Any]:
        """Send an event to the other servers and return each one's answer.

        Raises RequestTimeoutError (``timeout reached: only X responses received out of Y``)
        when some server does not answer within ``timeout`` (default ``requests_timeout``).
        """
        data = [check_event(event), *args]
        return await self._engine.queries.server_side_emit_with_ack(namespace, data, timeout)
