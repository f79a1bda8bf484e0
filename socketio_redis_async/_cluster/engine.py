"""``ClusterEngine``: the counterpart of Node's ``ClusterAdapter``, over any transport and
wire format.

It owns this server's uid, the namespace plan, the local view and delivery, the requests
layer (it is their bus), the responders, the receiver and the bridge, and talks only to
a ``Transport`` (``_transport.base``) and a ``WireFormat`` (``_protocol.wire``). Its
operations are three parts that see it through the ``Cluster`` interface:
``broadcasts`` (with and without acks), ``queries`` (fetch_sockets, all_rooms,
server-side emits...) and ``sockets`` (join, leave, disconnect wherever a socket is).
The python-socketio facade (``_manager.ClusterManager``) delegates to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import anyio

from .._health import ConnectionCallback
from .._local.delivery import Delivery
from .._local.host import Host
from .._local.sockets import LocalSockets
from .._options import Options
from .._protocol.channels import NamespaceChannels
from .._protocol.messages import CUSTOM_REQUEST_EVENT, Request
from .._protocol.wire import Outgoing, WireFormat
from .._transport.base import TRANSPORT_STATS, TransportFactory, TransportHooks
from .bridge import Bridge
from .broadcasts import Broadcasts
from .cluster import Offsets
from .link_state import LinkState
from .plan import NamespacePlan
from .queries import Queries
from .receiver import Receiver
from .requests import Requester
from .responders import Responders
from .socket_ops import SocketOps


class ClusterEngine:
    """One server's part of a Socket.IO cluster: what it subscribes, publishes, answers."""

    def __init__(
        self,
        *,
        host: Host,
        options: Options,
        wire: WireFormat,
        transport: TransportFactory,
        served: Callable[[], set[str]],
        logger: logging.Logger,
        on_connection_change: ConnectionCallback | None = None,
        bridge_channel: str | None = None,
    ) -> None:
        """``served()`` names the namespaces the host declares (kept even when empty)."""
        self.host = host
        self.options = options
        self.wire = wire
        self.logger = logger
        self._served = served
        self._pid = os.getpid()
        self._uid = wire.new_uid()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.link = LinkState(on_connection_change, self.spawn, logger)
        self.handlers: dict[tuple[str, str], Callable[..., Any]] = {}
        self.offsets: Offsets | None = None
        self.custom_hook: Callable[[Any], Any] | None = None
        hooks = TransportHooks(
            on_message=self._on_message,
            on_change=self.link.subscription_changed,
            uid=lambda: self.uid,
            on_entry=self._on_entry,
        )
        self.transport = transport(hooks)
        self.plan = NamespacePlan(options.key, lambda: self.uid, wire, self.transport, self.keeps)
        self.delivery = Delivery(host, options.max_socket_backlog, self.spawn, logger)
        self.local = LocalSockets(
            host,
            self.delivery,
            redact_headers=options.redact_headers,
            redact_query=options.redact_query,
            close_timeout=options.requests_timeout,
        )
        self.requests = Requester(
            self,
            options.requests_timeout,
            self.spawn,
            lambda answer, exc: self.receiver.on_unusable_answer(answer, exc),
            options.max_answer_size,
        )
        self.responders = Responders(
            lambda: self.uid,
            self.local,
            self.transport.publish,
            self.spawn,
            max_answer_size=options.max_answer_size,
            is_own=self.requests.__contains__,
            handler_of=self._handler_of,
            ack_timeout=options.ack_timeout,
            logger=logger,
            encode_answer=self._encode_answer,
        )
        self.bridge: Bridge | None = None
        if bridge_channel is not None:
            self.bridge = Bridge(
                host,
                self.local,
                self.transport.publish,
                lambda: self.uid,
                self.spawn,
                options.ack_timeout,
                bridge_channel,
                logger,
            )
            self.transport.want(bridge_channel)
        self.receiver = Receiver(
            uid=lambda: self.uid,
            wire=wire,
            options=options,
            plan=self.plan,
            local=self.local,
            delivery=self.delivery,
            responders=self.responders,
            requests=self.requests,
            bridge=self.bridge,
            logger=logger,
        )
        self.broadcasts = Broadcasts(self)
        self.queries = Queries(self)
        self.sockets = SocketOps(self, self.queries)

    @property
    def uid(self) -> str:
        """This server's id on the wire; a new one is made in a forked child process."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._uid = self.wire.new_uid()
        return self._uid

    # -- what keeps a namespace served --------------------------------------------------

    def keeps(self, nsp: str) -> bool:
        """True while this server serves ``nsp``: it has local sockets there, handlers for
        it (``adapter.on()``), or the host declares it."""
        if nsp in self.host.rooms:
            return True
        if any(name == nsp for name, _ in self.handlers):
            return True
        return nsp in self._served()

    def unhold(self, nsp: str) -> None:
        """End one hold of ``nsp`` (a request round or an ack entry)."""
        if self.plan.unhold(nsp):
            self.requests.forget(nsp)

    def release_if_idle(self, nsp: str) -> None:
        """Unsubscribe ``nsp`` once nothing keeps it (its last socket left)."""
        if self.plan.release_if_idle(nsp):
            self.requests.forget(nsp)

    def _handler_of(self, nsp: str, event: str) -> Callable[..., Any] | None:
        if event == CUSTOM_REQUEST_EVENT:
            return self.custom_hook
        return self.handlers.get((nsp, event))

    # -- the requests layer's bus -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serving(self, nsp: str) -> AsyncIterator[NamespaceChannels]:
        """Serve ``nsp`` while a request on it is in flight: its request channel counts
        this server in NUMSUB exactly once, and its response channels hear the answers."""
        channels = self.plan.hold(nsp)
        try:
            await self.transport.confirm(
                [channels.request, channels.response, channels.response_for(self.uid)]
            )
            yield channels
        finally:
            self.unhold(nsp)

    async def count_servers(self, nsp: str) -> int:
        """NUMSUB of ``nsp``'s request channel; this server included while serving."""
        return await self.transport.count_subscribers(self.plan.channels_of(nsp).request)

    async def live_servers(self, nsp: str) -> list[str]:
        """Uids of the servers listening on their own response channel of ``nsp``."""
        channels = self.plan.channels_of(nsp)
        found = channels.uids(await self.transport.channels(channels.uid_pattern))
        return [uid for uid in found if self.wire.is_server_uid(uid)]

    async def publish_request(self, nsp: str, request: dict[str, Any]) -> None:
        """Send a request (a classic request map) where the wire format says it goes."""
        await self.send(self.wire.request(self.uid, self.plan.channels_of(nsp), request))

    async def send(self, out: Outgoing, *, queued: bool = False) -> bytes | None:
        """Publish or append ``out`` (its entry id); ``queued``: see ``LinkState.queue``."""
        if queued and self.options.queued_emits:
            return await self.link.queue(self.transport, out)
        if out.fields is None:
            await self.transport.publish(out.target, out.payload)
            return None
        self.transport.check_size(out.payload)
        return await self.transport.append(out.target, out.fields, out.max_len)

    async def bridged(self, method: str, namespace: str, **fields: Any) -> None:
        """Tell AsyncRedisManager servers too, in bridge mode."""
        if self.bridge is not None:
            await self.bridge.publish({"method": method, "namespace": namespace, **fields})

    def _encode_answer(
        self, nsp: str, request: Request, value: dict[str, Any], limit: int
    ) -> tuple[str, bytes, str | None]:
        channels = self.plan.channels_of(nsp)
        return self.wire.encode_answer(self.uid, channels, request, value, limit)

    def add_offsets(self, offsets: Offsets) -> None:
        """Recovery on: packets carry stream offsets; own entries are told to ``offsets``."""
        self.offsets, self.receiver.offsets = offsets, True

    # -- lifecycle ----------------------------------------------------------------------

    def initialize(self) -> None:
        """Serve the declared namespaces and start the listener (idempotent)."""
        if self.transport.listening:
            return
        for nsp in self._served():
            self.plan.ensure(nsp)
        self.transport.listen()

    async def start(self) -> None:
        """Listen and return once the transport confirmed every subscription."""
        self.initialize()
        await self.transport.start()

    async def aclose(self) -> None:
        """Stop listening, cancel the tasks it owns, drop pending requests, close."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await self.transport.stop_listening()
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=10)
                if stuck:
                    self.logger.error("%d adapter tasks did not stop within 10 s", len(stuck))
            self.requests.clear()
            self.delivery.close()
            await self.link.close(self.transport)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run user code (handlers, ack callbacks) in a task the engine owns and awaits."""
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("a handler or ack callback failed", exc_info=task.exception())

    async def _on_message(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        await self.receiver.on_message(channel, payload, pattern)

    async def _on_entry(self, stream: bytes, entry_id: bytes, fields: list[bytes]) -> None:
        await self.receiver.on_entry(stream, entry_id, fields)

    # -- monitoring ---------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters: dropped messages, reconnects, subscriptions, pending acks..."""
        requests, delivery, transport = self.requests, self.delivery, self.transport.stats()
        return {
            "dropped_messages": self.receiver.dropped,
            "handler_errors": transport["handler_errors"],
            "reconnects": transport["reconnects"],
            "subscribed_channels": transport["subscribed_channels"],
            "pending_acks": len(requests.acks),
            "pending_requests": len(requests.pending),
            "unusable_answers": requests.pending.unusable,
            "published": transport["published"],
            "publish_batches": transport["publish_batches"],
            **delivery.stats(),
            "publish_failures": transport["publish_failures"],
            "publish_backlog_bytes": transport["publish_backlog_bytes"],
            **self.link.stats(),
            **{k: v for k, v in transport.items() if k not in TRANSPORT_STATS},
        }
