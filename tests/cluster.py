"""Real Socket.IO servers (aiohttp on loopback) and real clients, for the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import socketio
from aiohttp import web

from socketio_redis_async import AsyncRedisAdapter

NAMESPACES = ["/", "/custom"]


class Node:
    """One AsyncServer with an AsyncRedisAdapter, served by aiohttp on 127.0.0.1."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        adapter: AsyncRedisAdapter,
        runner: web.AppRunner,
        port: int,
    ):
        self.sio = sio
        self.adapter = adapter
        self.runner = runner
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server_events: list[tuple[str, str, tuple[Any, ...]]] = []

    @classmethod
    async def start(cls, redis_url: str, key: str, **adapter_options: Any) -> Node:
        adapter_options.setdefault("requests_timeout", 2)
        namespaces = adapter_options.pop("namespaces", NAMESPACES)
        server_options = adapter_options.pop("server_options", {})
        adapter = AsyncRedisAdapter(redis_url, key=key, **adapter_options)
        sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=adapter,
            namespaces=namespaces,
            transports=["websocket"],
            **server_options,
        )
        app = web.Application()
        sio.attach(app)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            await adapter.start()
        except BaseException:
            await adapter.aclose()
            await runner.cleanup()
            raise
        return cls(sio, adapter, runner, port)

    def sids(self, namespace: str = "/") -> set[str]:
        """Sids of the sockets connected to this node."""
        return {sid for sid, _ in self.sio.manager.get_participants(namespace, None)}

    async def aclose(self) -> None:
        if self.sio.eio.sockets:
            # A socket whose client is leaving at this very moment may never drain.
            with anyio.move_on_after(5):
                await self.sio.eio.disconnect()
        await self.adapter.aclose()
        await self.runner.cleanup()


class Client:
    """A python-socketio client over websocket that records every event it receives."""

    def __init__(self, name: str = "client") -> None:
        self.name = name
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, str, list[Any]]] = []
        self.ack_value: Callable[[str, list[Any]], Any] = lambda event, args: None
        self._changed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.never_ack: set[str] = set()
        self._forever = asyncio.Event()

        @self.sio.on("*", namespace="*")
        async def on_any(*args: Any) -> Any:
            # python-socketio passes (event, namespace, *args) to a catch-all handler, but
            # (namespace, *args) for an event literally named "*" (it matches by name).
            connected = set(self.sio.namespaces)
            if args[0] in connected and (len(args) < 2 or args[1] not in connected):
                args = ("*", *args)
            event, namespace, *rest = args
            args = tuple(rest)
            self.events.append((namespace, event, list(args)))
            self._changed.set()
            if event in self.never_ack:
                await self._forever.wait()
            return self.ack_value(event, list(args))

        @self.sio.on("disconnect", namespace="*")
        async def on_disconnect(namespace: str, *args: Any) -> None:
            self.disconnected.set()

    async def connect(self, node: Node, namespaces: list[str] | None = None) -> Client:
        await self.sio.connect(
            node.url, transports=["websocket"], namespaces=namespaces or ["/"], wait_timeout=5
        )
        return self

    def sid(self, namespace: str = "/") -> str:
        sid: str | None = self.sio.get_sid(namespace)
        assert sid is not None
        return sid

    def received(self, event: str, namespace: str = "/") -> list[list[Any]]:
        """Argument lists of every ``event`` received so far in ``namespace``."""
        return [args for ns, ev, args in self.events if ev == event and ns == namespace]

    async def wait_for(
        self, event: str, count: int = 1, namespace: str = "/", timeout: float = 5
    ) -> list[list[Any]]:
        """Wait until ``event`` arrived ``count`` times; return the argument lists."""
        with anyio.fail_after(timeout):
            while len(self.received(event, namespace)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.received(event, namespace)

    async def aclose(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 5, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it holds (for state that has no event to await)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await asyncio.sleep(0.005)
