"""A benchmark cluster: a fresh redis-server, N servers of one contender, a load client,
and a CPU meter over all of their pids. ``async with Cluster(...)`` always cleans up."""

from __future__ import annotations

from types import TracebackType

import aiohttp

from .drivers import (
    LoadClient,
    ServerHandle,
    start_load_client,
    start_servers,
    wait_subscribers,
)
from .processes import CpuMeter, Processes

KEY = "bench"


class Cluster:
    """Redis + ``servers`` servers of ``contender`` (+ a load client), all on 127.0.0.1."""

    def __init__(self, contender: str, servers: int = 2, load_client: bool = True) -> None:
        self.contender = contender
        self._initial = servers
        self._with_load_client = load_client
        self.procs = Processes()
        self.meter = CpuMeter()
        self.servers: list[ServerHandle] = []
        self.redis_url = ""
        self._http: aiohttp.ClientSession | None = None
        self._load: LoadClient | None = None

    @property
    def a(self) -> ServerHandle:
        return self.servers[0]

    @property
    def b(self) -> ServerHandle:
        return self.servers[1]

    @property
    def load(self) -> LoadClient:
        assert self._load is not None
        return self._load

    async def __aenter__(self) -> Cluster:
        try:
            redis = self.procs.start_redis()
            assert redis._proc is not None
            self.redis_url = redis.url
            self.meter.add("redis", redis._proc.pid)
            self._http = aiohttp.ClientSession()
            await self.add_servers(self._initial)
            if self._with_load_client:
                self._load = await start_load_client(self.procs)
                self.meter.add("clients", self._load.pid)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def add_servers(self, count: int) -> list[ServerHandle]:
        """Start ``count`` more servers; the first two are metered as server A and B."""
        assert self._http is not None
        added = await start_servers(
            self.procs, self._http, self.contender, self.redis_url, KEY, count
        )
        for server in added:
            index = len(self.servers)
            role = {0: "server A", 1: "server B"}.get(index, "other servers")
            self.meter.add(role, server.pid)
            self.servers.append(server)
        await wait_subscribers(self.redis_url, self.contender, KEY, len(self.servers))
        return added

    async def add_sender(self, contender: str) -> ServerHandle:
        """Start one emitter process (no Socket.IO server), metered as "emitter"."""
        assert self._http is not None
        (sender,) = await start_servers(self.procs, self._http, contender, self.redis_url, KEY, 1)
        self.meter.add("emitter", sender.pid)
        return sender

    async def aclose(self) -> None:
        if self._load is not None:
            self._load.close()
        if self._http is not None:
            await self._http.close()
        await self.procs.aclose()
