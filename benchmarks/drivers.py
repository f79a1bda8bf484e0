"""The orchestrator's side of the child processes: HTTP control of the servers, the
load-client line protocol, and the counting receivers both of them offer."""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any, Protocol

import aiohttp
from redis.asyncio import Redis

from .contenders import NODE, RAW, REDIS_MANAGER
from .processes import ROOT, Child, Processes

NODE_MODULES = ROOT / "tests" / "interop" / "node_modules"


def node_available() -> str | None:
    """Why the Node contender cannot run, or None if it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_MODULES / "@socket.io" / "redis-adapter").exists():
        return "tests/interop/node_modules is missing (npm ci --prefix tests/interop)"
    return None


class ServerHandle:
    """One server process, driven over HTTP on its own loopback port."""

    def __init__(self, child: Child, contender: str, http: aiohttp.ClientSession) -> None:
        self.child = child
        self.contender = contender
        self.pid = child.pid
        self.port = int(child.ready["port"])
        self._http = http
        self._base = f"http://127.0.0.1:{self.port}"

    async def call(self, method: str, path: str, query: dict[str, Any], wait: float = 60) -> Any:
        """One control request; ``wait`` bounds how long its answer may take."""
        params = {k: str(v) for k, v in query.items()}
        client_timeout = aiohttp.ClientTimeout(total=wait)
        async with self._http.request(
            method, self._base + path, params=params, timeout=client_timeout
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{path} on {self.contender}: {resp.status} {await resp.text()}")
            return await resp.json()

    async def blast(
        self, n: int, room: str, rate: float = 0, concurrency: int = 1, timeout: float = 600
    ) -> float:
        """Emit ``n`` events to ``room`` (awaiting each); return the sender's elapsed time."""
        query = {"n": n, "room": room, "rate": rate, "concurrency": concurrency}
        result = await self.call("POST", "/blast", query, wait=timeout)
        return float(result["elapsed"])

    async def join(self, prefix: str, start: int, count: int) -> int:
        """Make every local socket join ``prefix-<start>`` .. ``prefix-<start+count-1>``."""
        query = {"prefix": prefix, "start": start, "count": count}
        result = await self.call("POST", "/join", query, wait=300)
        return int(result["rooms"])

    async def requests(self, kind: str, n: int) -> list[float]:
        """Durations (s) of ``n`` sequential ``all_rooms`` or ``fetch_sockets`` requests."""
        result = await self.call("GET", "/requests", {"kind": kind, "n": n}, wait=300)
        return [float(d) for d in result["durations"]]


class Receiver(Protocol):
    """Something that counts the events of a run (load-client group or raw subscriber)."""

    async def arm(self, total: int, latency: bool) -> None: ...

    async def wait(self, timeout: float) -> dict[str, Any]: ...

    async def stats(self) -> dict[str, Any]: ...


class RawReceiver:
    """The raw contender's subscriber process counts for itself."""

    def __init__(self, server: ServerHandle) -> None:
        self._server = server

    async def arm(self, total: int, latency: bool) -> None:
        await self._server.call("POST", "/arm", {"total": total, "latency": int(latency)})

    async def wait(self, timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = await self._server.call(
            "GET", "/wait", {"timeout": timeout}, wait=timeout + 30
        )
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._server.call("GET", "/stats", {})
        return result


class LoadClient:
    """The load-client process (``loadclient.py``): JSON commands on stdin, replies on stdout."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.pid = child.pid
        self._next = 0
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        stdout = self.child.proc.stdout
        assert stdout is not None
        while line := await stdout.readline():
            reply = json.loads(line)
            fut = self._replies.pop(reply["id"], None)
            if fut is None or fut.done():
                continue
            if reply["ok"]:
                fut.set_result(reply["result"])
            else:
                fut.set_exception(RuntimeError(f"load client: {reply['error']}"))
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(RuntimeError("the load client exited"))

    async def cmd(self, cmd: str, args: dict[str, Any], wait: float = 60) -> Any:
        """Send one command and return its result (``wait`` bounds the answer's delay)."""
        self._next += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[self._next] = fut
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps({"id": self._next, "cmd": cmd, **args}).encode() + b"\n")
        await stdin.drain()
        return await asyncio.wait_for(fut, wait)

    async def connect(self, group: str, server: ServerHandle, n: int, rooms: list[str]) -> None:
        """Open ``n`` connections to ``server`` that join ``rooms``; count them as ``group``."""
        args = {"group": group, "host": "127.0.0.1", "port": server.port, "n": n, "rooms": rooms}
        await self.cmd("connect", args, wait=120)

    def group(self, name: str) -> GroupReceiver:
        return GroupReceiver(self, name)

    def close(self) -> None:
        self._reader.cancel()


class GroupReceiver:
    """One group of load-client connections as a Receiver."""

    def __init__(self, client: LoadClient, group: str) -> None:
        self._client = client
        self._group = group

    async def arm(self, total: int, latency: bool) -> None:
        args = {"group": self._group, "total": total, "latency": latency}
        await self._client.cmd("arm", args)

    async def wait(self, timeout: float) -> dict[str, Any]:
        args = {"group": self._group, "timeout": timeout}
        result: dict[str, Any] = await self._client.cmd("wait", args, wait=timeout + 30)
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._client.cmd("stats", {"group": self._group})
        return result


async def start_servers(
    procs: Processes,
    http: aiohttp.ClientSession,
    contender: str,
    redis_url: str,
    key: str,
    count: int,
) -> list[ServerHandle]:
    """Start ``count`` servers of ``contender`` in parallel and wait until all subscribe."""
    if contender == NODE:
        script = str(ROOT / "benchmarks" / "node_bench.js")
        starts = [
            procs.spawn(f"node-{i}", ["node", script, "--redis", redis_url, "--key", key])
            for i in range(count)
        ]
    else:
        args = ("--contender", contender, "--redis", redis_url, "--key", key)
        starts = [procs.python(f"{contender}-{i}", "server", *args) for i in range(count)]
    children = await asyncio.gather(*starts)
    return [ServerHandle(child, contender, http) for child in children]


async def wait_subscribers(redis_url: str, contender: str, key: str, expected: int) -> None:
    """python-socketio's AsyncRedisManager and raw redis-py subscribe in the background:
    wait until Redis counts ``expected`` subscribers on their channel."""
    if contender not in (REDIS_MANAGER, RAW):
        return
    channel = key if contender == REDIS_MANAGER else f"{key}#raw"
    redis = Redis.from_url(redis_url)
    try:
        for _ in range(1000):
            counts = await redis.pubsub_numsub(channel)
            if counts and int(counts[0][1]) >= expected:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError(f"{contender}: {expected} subscribers did not show up on {channel}")
    finally:
        await redis.aclose()


async def start_load_client(procs: Processes) -> LoadClient:
    child = await procs.python("loadclient", "loadclient")
    return LoadClient(child)
