"""The cluster-wide API of :class:`AsyncRedisAdapter`: what Node's adapter offers on top
of python-socketio's manager contract (``fetch_sockets``, ``server_side_emit``...).

Each method reads one way: validate the arguments, act on local sockets through the
``LocalView``, build the request with the protocol layer, and publish it or run a round
through the requests layer.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import socketio

from ._operator import RoomArg, rooms_of
from ._options import Options, check_bool
from ._protocol import answers, messages
from ._protocol.channels import NamespaceChannels
from ._protocol.messages import CUSTOM_REQUEST_EVENT, check_event
from ._protocol.rooms import Room
from ._sockets import RemoteSocket

if TYPE_CHECKING:  # the layers the host glue wires; no module here imports this one back
    from ._cluster.bridge import Bridge
    from ._cluster.plan import NamespacePlan
    from ._cluster.requests import Requester
    from ._local.delivery import Delivery
    from ._local.sockets import LocalSockets
    from ._transport.pubsub import RedisTransport
    from ._transport.sharded import ShardedTransport


class ClusterAPI(socketio.AsyncManager):  # type: ignore[misc]
    """Cluster-wide operations; the layers are set up by ``AsyncRedisAdapter``."""

    _options: Options
    _transport: RedisTransport | ShardedTransport
    _plan: NamespacePlan
    _local: LocalSockets
    _delivery: Delivery
    _requests: Requester
    _bridge: Bridge | None
    _server_handlers: dict[tuple[str, str], Callable[..., Any]]
    custom_hook: Callable[[Any], Any] | None
    logger: logging.Logger

    @property
    def uid(self) -> str:
        raise NotImplementedError

    async def _publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        return await self._transport.publish(channel, payload, limit)

    async def _publish_request(self, nsp: str, request: dict[str, Any]) -> None:
        await self._publish(self._plan.channels_of(nsp).request, messages.encode_request(request))

    # -- asking the cluster -------------------------------------------------------------

    async def server_count(self, *, namespace: str = "/") -> int:
        """How many servers serve ``namespace`` (``PUBSUB NUMSUB`` on its request channel).

        This server counts only if it serves ``namespace`` (local sockets or handlers).
        """
        served = self._plan.leased(namespace) or self._keeps(namespace)
        async with self.serving(namespace):
            count = await self.count_servers(namespace)
        return count if served else count - 1

    async def all_rooms(self, *, namespace: str = "/") -> set[Room]:
        """Every room of every server, socket-id rooms included (Node's ``allRooms()``)."""
        rooms = set(self._local.room_names(namespace))
        for remote in await self._requests.gather(
            namespace,
            lambda rid: messages.all_rooms_request(self.uid, rid),
            answers.rooms_of,
            what="allRooms",
        ):
            rooms.update(remote)
        return rooms

    async def clients(self, rooms: RoomArg | None = None, *, namespace: str = "/") -> list[str]:
        """Sids of the sockets in any of ``rooms`` (all sockets if None), cluster-wide."""
        selector = list(rooms_of(rooms))
        sids = [sid for sid, _ in self._local.recipients(namespace, selector, ())]
        for remote in await self._requests.gather(
            namespace,
            lambda rid: messages.sockets_request(self.uid, rid, selector),
            answers.sids_of,
            what="clients",
        ):
            sids.extend(remote)
        return sids

    async def client_rooms(self, sid: str, *, namespace: str = "/") -> set[Room] | None:
        """The rooms of socket ``sid`` wherever it lives; None if no server holds it."""
        if self._local.is_local(sid, namespace):
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
        found = self._local.describe(
            namespace, self._local.recipients(namespace, selector, excluded)
        )
        if not local and not self._local.only_local_sid(namespace, selector):
            for remote in await self._requests.gather(
                namespace,
                lambda rid: messages.fetch_request(self.uid, rid, selector, excluded),
                answers.sockets_of,
                what="fetchSockets",
            ):
                found.extend(remote)
        return [
            RemoteSocket(
                self,
                namespace,
                s["id"],
                _as_dict(s.get("handshake")),
                frozenset(r for r in s.get("rooms") or () if isinstance(r, (str, int))),
                s.get("data"),
            )
            for s in found
        ]

    async def custom_request(self, data: Any, *, namespace: str = "/") -> list[Any]:
        """Every server's ``custom_hook(data)`` answer, this server's first.

        Travels as SERVER_SIDE_EMIT with ack of the event ``CUSTOM_REQUEST_EVENT``, so a
        Node server answers with ``io.on("__socketio_redis_custom_request__", (d, cb) => cb(x))``.
        """
        own = self.custom_hook(data) if self.custom_hook else None
        if inspect.isawaitable(own):
            own = await own
        return [
            own,
            *await self._requests.gather(
                namespace,
                lambda rid: messages.server_side_emit_request(
                    self.uid, [CUSTOM_REQUEST_EVENT, data], rid
                ),
                answers.data_of,
                what="customRequest",
            ),
        ]

    def on(
        self, event: str, handler: Callable[..., Any] | None = None, *, namespace: str = "/"
    ) -> Any:
        """Register a handler for ``server_side_emit(event, ...)`` from other servers.

        The handler gets the event's arguments; what it returns (or its coroutine returns)
        is the answer to ``server_side_emit_with_ack``. Usable as a decorator.
        """
        check_event(event)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._server_handlers[(namespace, event)] = fn
            self._plan.ensure(namespace)  # kept while it has handlers
            return fn

        return register if handler is None else register(handler)

    async def server_side_emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Send an event to the other servers' handlers (never to this server's)."""
        check_event(event)
        request = messages.server_side_emit_request(self.uid, [event, *args])
        await self._publish_request(namespace, request)

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, namespace: str = "/", timeout: float | None = None
    ) -> list[Any]:
        """Send an event to the other servers and return each one's answer.

        Raises RequestTimeoutError (``timeout reached: only X responses received out of Y``)
        when some server does not answer within ``timeout`` (default ``requests_timeout``).
        """
        check_event(event)
        return await self._requests.gather(
            namespace,
            lambda rid: messages.server_side_emit_request(self.uid, [event, *args], rid),
            answers.data_of,
            what=None,
            timeout=timeout,
        )

    # -- the requests layer's Bus -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serving(self, nsp: str) -> AsyncIterator[NamespaceChannels]:
        """Serve ``nsp`` while a request on it is in flight: its request channel counts
        this server in NUMSUB exactly once, and its response channels hear the answers."""
        channels = self._plan.hold(nsp)
        try:
            await self._transport.confirm(
                [channels.request, channels.response, channels.response_for(self.uid)]
            )
            yield channels
        finally:
            self._unhold(nsp)

    async def count_servers(self, nsp: str) -> int:
        """``PUBSUB NUMSUB`` of the request channel; this server included while serving."""
        return await self._transport.count_subscribers(self._plan.channels_of(nsp).request)

    async def live_servers(self, nsp: str) -> list[str]:
        """Uids of the servers listening on their own response channel (Python, Node >= 7.1)."""
        channels = self._plan.channels_of(nsp)
        return channels.uids(await self._transport.channels(channels.uid_pattern))

    async def publish_request(self, nsp: str, request: dict[str, Any]) -> None:
        await self._publish_request(nsp, request)

    def _unhold(self, nsp: str) -> None:
        if self._plan.unhold(nsp):
            self._requests.forget(nsp)

    def _release_if_idle(self, nsp: str) -> None:
        if self._plan.release_if_idle(nsp):
            self._requests.forget(nsp)

    def _keeps(self, nsp: str) -> bool:
        raise NotImplementedError

    def _handler_of(self, nsp: str, event: str) -> Callable[..., Any] | None:
        if event == CUSTOM_REQUEST_EVENT:
            return self.custom_hook
        return self._server_handlers.get((nsp, event))


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
