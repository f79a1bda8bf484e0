"""The Socket.IO admin UI over a whole cluster: python-socketio's instrumentation, cluster-wide.

python-socketio's ``sio.instrument()`` works with this adapter as it is: its ``server_stats``,
``socket_connected`` and other reports are broadcasts to the admin namespace, which the
adapter carries to the admin UI whichever server it is connected to. Two things are local
in it, though: the ``all_sockets`` list an admin receives when it connects (so sockets of
the other servers appear only as they connect, or at their next ping), and the admin's
join, leave and disconnect actions. And it awaits each report before the work it reports
on, so a report that cannot be published stops that work. :func:`instrument` fixes all
three.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import socketio
from engineio.async_socket import AsyncSocket
from redis.exceptions import RedisError
from socketio.async_admin import InstrumentedAsyncServer

from ._errors import RedisAdapterError, RequestTimeoutError
from ._manager import ClusterManager

ADMIN_SOCKETS_EVENT = "__socketio_redis_admin_sockets__"
"""The server-side event that asks every server for its sockets, serialized for the UI."""

logger = logging.getLogger("socketio_redis_async")


class ClusterInstrumentedAsyncServer(InstrumentedAsyncServer):  # type: ignore[misc]
    """python-socketio's ``InstrumentedAsyncServer`` with a cluster-wide view.

    - The ``all_sockets`` list sent to an admin that connects holds the sockets of every
      server: each server answers a server-side emit with python-socketio's own
      serialization of its local sockets (``Cookie``/``Authorization`` headers left out
      unless the adapter has ``share_sensitive_headers``).
    - The admin's join, leave and disconnect actions reach sockets on every server
      (``sockets_join``, ``sockets_leave``, ``disconnect_sockets``).
    - Reports to the admin namespace are best effort: one that cannot be published (Redis
      down) is logged and dropped. python-socketio awaits them before the connection, the
      event or the stats they report, so a failed publish would otherwise refuse every
      connection, drop every event and end the stats loop for good.
    """

    def __init__(self, sio: socketio.AsyncServer, **options: Any) -> None:
        manager = getattr(sio, "manager", None)
        if not isinstance(manager, ClusterManager):
            raise TypeError(
                "instrument() needs a socketio.AsyncServer whose client_manager is an "
                "AsyncRedisAdapter; use sio.instrument() for other managers"
            )
        if isinstance(vars(AsyncSocket)["handle_post_request"], functools.partialmethod):
            # python-socketio patches engine.io's socket class, and a second layer of
            # patches makes every websocket connection fail with RecursionError.
            raise RuntimeError(
                "a server of this process is already instrumented; python-socketio's "
                "instrumentation works for one server per process"
            )
        self.adapter = manager
        self._lost_reports = 0
        self._last_lost_log = -1e9
        super().__init__(sio, **options)
        manager.on(ADMIN_SOCKETS_EVENT, self._local_sockets)

    def instrument(self) -> None:
        super().instrument()
        # In development mode this wraps python-socketio's own wrapper (self._emit).
        self._inner_emit = self.adapter.emit
        self.adapter.emit = self._best_effort_emit  # type: ignore[method-assign,assignment]

    def uninstrument(self) -> None:
        super().uninstrument()
        if self.mode != "development":
            del self.adapter.emit  # python-socketio restores it in development mode

    async def _best_effort_emit(self, event: str, data: Any, namespace: str, **kwargs: Any) -> Any:
        try:
            return await self._inner_emit(event, data, namespace, **kwargs)
        except (RedisAdapterError, ValueError) as exc:  # not published, or over max_message_size
            if namespace != self.admin_namespace:
                raise
            self._lost_reports += 1
            now = time.monotonic()
            if now - self._last_lost_log >= 10:
                self._last_lost_log = now
                logger.warning(
                    "admin UI report %r dropped (%d so far, logged every 10 s at most): %s",
                    event,
                    self._lost_reports,
                    exc,
                )
            return None

    def _local_sockets(self) -> list[dict[str, Any]]:
        """This server's sockets as the admin UI shows them (empty in production mode)."""
        if self.mode != "development":
            return []
        sockets = []
        for nsp in list(self.adapter.get_namespaces()):
            for sid, eio_sid in list(self.adapter.get_participants(nsp, None)):
                try:
                    serialized: dict[str, Any] = self.serialize_socket(sid, nsp, eio_sid)
                except KeyError:  # the connection closed meanwhile
                    continue
                # The list crosses Redis: leave out what fetch_sockets leaves out.
                handshake = serialized["handshake"]
                for field, redacted in (
                    ("headers", self.adapter._options.redact_headers),
                    ("query", self.adapter._options.redact_query),
                ):
                    values = handshake.get(field) or {}
                    for name in list(values):
                        if name.lower().replace("_", "-") in redacted:
                            del values[name]
                sockets.append(serialized)
        return sockets

    async def _cluster_sockets(self, local: list[Any]) -> list[Any]:
        """``local`` (python-socketio's list) plus the sockets of every other server."""
        ask = self.adapter.server_side_emit_with_ack(ADMIN_SOCKETS_EVENT)
        try:
            # The server count (PUBSUB NUMSUB) has no bound of its own.
            answers = await asyncio.wait_for(ask, 2 * self.adapter.requests_timeout)
        except RequestTimeoutError as exc:
            answers = exc.responses
            logger.warning("admin UI socket list is incomplete: %s", exc)
        except (asyncio.TimeoutError, RedisAdapterError, RedisError) as exc:
            logger.warning("admin UI socket list has this server's sockets only: %r", exc)
            return local
        sockets = list(local)
        seen = {(s.get("nsp"), s.get("id")) for s in local if isinstance(s, dict)}
        for answer in answers:
            for socket in answer if isinstance(answer, list) else ():
                if not isinstance(socket, dict) or not isinstance(socket.get("id"), str):
                    continue
                if (socket.get("nsp"), socket["id"]) not in seen:
                    seen.add((socket.get("nsp"), socket["id"]))
                    sockets.append(socket)
        return sockets

    async def _emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        **kwargs: Any,
    ) -> Any:
        # python-socketio installs this method as the manager's emit (development mode);
        # the one message it sends with the local socket list is completed on its way.
        if event == "all_sockets" and namespace == self.admin_namespace and isinstance(data, list):
            data = await self._cluster_sockets(data)
        return await super()._emit(
            event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
        )

    async def admin_enter_room(
        self, _: str, namespace: str, room: Any, room_filter: Any = None
    ) -> None:
        await self.adapter.sockets_join(room, to=room_filter, namespace=namespace)

    async def admin_leave_room(
        self, _: str, namespace: str, room: Any, room_filter: Any = None
    ) -> None:
        await self.adapter.sockets_leave(room, to=room_filter, namespace=namespace)

    async def admin_disconnect(
        self, _: str, namespace: str, close: Any, room_filter: Any = None
    ) -> None:
        await self.adapter.disconnect_sockets(close is True, to=room_filter, namespace=namespace)


def instrument(
    sio: socketio.AsyncServer,
    auth: Any = None,
    mode: str = "development",
    read_only: bool = False,
    server_id: str | None = None,
    namespace: str = "/admin",
    server_stats_interval: float = 2,
) -> ClusterInstrumentedAsyncServer:
    """``sio.instrument(...)`` with a cluster-wide socket list and admin actions.

    Same arguments as python-socketio's ``AsyncServer.instrument``; call it on every server
    of the cluster (a server that is not instrumented this way does not answer, and the
    list waits ``requests_timeout`` for it). The server id shown is the adapter's uid.
    """
    return ClusterInstrumentedAsyncServer(
        sio,
        auth=auth,
        mode=mode,
        read_only=read_only,
        server_id=server_id,
        namespace=namespace,
        server_stats_interval=server_stats_interval,
    )
