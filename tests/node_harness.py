"""Drives tests/interop/server.js: a real socket.io 4.8 server on @socket.io/redis-adapter."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.helpers import stop_process

INTEROP = Path(__file__).parent / "interop"


running_test: pytest.Item | None = None
"""The test being set up or run (tests/conftest.py sets it): only ``interop`` ones start Node."""


def require_node() -> str:
    """Path of node; skip (locally) or fail (in CI) when Node or the npm packages are missing."""
    if running_test is not None and running_test.get_closest_marker("interop") is None:
        pytest.fail(f"{running_test.nodeid} starts Node: mark it @pytest.mark.interop")
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not installed"
    elif not all(
        (INTEROP / "node_modules" / "@socket.io" / name).exists()
        for name in ("redis-adapter", "redis-streams-adapter")
    ):
        missing = "tests/interop/node_modules is missing (run: npm ci --prefix tests/interop)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"interop prerequisites missing in CI: {missing}")
        pytest.skip(missing)
    assert node is not None
    return node


def to_node(value: Any) -> Any:
    """Python value -> the harness's JSON form ({"$bytes": base64} for bytes)."""
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (list, tuple)):
        return [to_node(v) for v in value]
    if isinstance(value, dict):
        return {k: to_node(v) for k, v in value.items()}
    return value


def from_node(value: Any) -> Any:
    """The harness's JSON form -> Python values."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: from_node(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_node(v) for v in value]
    return value


class NodeError(Exception):
    """A harness command failed."""


async def _spawn(script: str, *args: str) -> asyncio.subprocess.Process:
    """Run ``node tests/interop/SCRIPT ARGS`` with piped stdin and stdout."""
    return await asyncio.create_subprocess_exec(
        require_node(),
        str(INTEROP / script),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=16 * 1024 * 1024,
    )


class _Harness:
    """A Node process that writes one JSON message a line; it stops when its stdin closes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self._received(json.loads(line))

    def _received(self, msg: dict[str, Any]) -> None:
        self.events.append(msg)
        self._changed.set()

    def matching(self, **fields: Any) -> list[dict[str, Any]]:
        """Events whose fields equal ``fields``."""
        return [e for e in self.events if all(e.get(k) == v for k, v in fields.items())]

    async def _wait_matching(
        self, count: int, timeout: float, **fields: Any
    ) -> list[dict[str, Any]]:
        with anyio.fail_after(timeout):
            while len(self.matching(**fields)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.matching(**fields)

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await stop_process(self.proc)


class NodeServer(_Harness):
    """One harness process: send commands, read replies and events."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        super().__init__(proc)
        self.port: int = ready["port"]
        self.uids: dict[str, str] = ready["uids"]
        self.url = f"http://127.0.0.1:{self.port}"
        self.errors: list[dict[str, Any]] = []
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0

    @classmethod
    async def start(
        cls,
        redis_url: str,
        key: str,
        requests_timeout_ms: int = 1000,
        cluster: bool = False,
        sharded: str | None = None,
        streams: tuple[str, ...] | None = None,
    ) -> NodeServer:
        """``cluster``: ``redis_url`` is a Redis Cluster node; use node-redis's cluster client.
        ``sharded``: ``createShardedAdapter`` with this subscription mode ("static", "dynamic"
        or "dynamic-private"), ``key`` as its channelPrefix; it ignores ``requests_timeout_ms``
        (Node's sharded adapter always waits 5 s). ``streams``: the streams adapter, with
        these extra flags (``("--stream-name", name)``...), ``key`` as its channelPrefix."""
        proc = await _spawn(
            "server.js",
            *("--port", "0", "--redis", redis_url, "--key", key),
            *("--requests-timeout", str(requests_timeout_ms)),
            *(["--cluster"] if cluster else []),
            *(["--sharded", sharded] if sharded else []),
            *(["--streams", *streams] if streams is not None else []),
        )
        assert proc.stdout is not None
        try:
            with anyio.fail_after(20):
                while True:
                    line = await proc.stdout.readline()
                    if not line:
                        raise RuntimeError("node harness exited early")
                    msg = json.loads(line)
                    if msg.get("type") == "ready":
                        return cls(proc, msg)
        except BaseException:
            await stop_process(proc, grace=0)
            raise

    def _received(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "reply":
            fut = self._replies.pop(msg["id"], None)
            if fut is not None and not fut.done():
                if msg["ok"]:
                    fut.set_result(from_node(msg.get("result")))
                else:
                    fut.set_exception(NodeError(msg.get("error")))
            return
        if msg.get("type") == "error":
            self.errors.append(msg)
        super()._received(from_node(msg))

    async def cmd(self, cmd: str, *, wait: float = 15, **args: Any) -> Any:
        """Run a harness command and return its result."""
        self._next_id += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[self._next_id] = fut
        assert self.proc.stdin is not None
        line = {"id": self._next_id, "cmd": cmd, **{k: to_node(v) for k, v in args.items()}}
        self.proc.stdin.write(json.dumps(line).encode() + b"\n")
        with anyio.fail_after(wait):
            await self.proc.stdin.drain()
            return await fut

    async def wait_event(
        self, count: int = 1, timeout: float = 10, **fields: Any
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` events match ``fields``."""
        return await self._wait_matching(count, timeout, **fields)


class NodeClient(_Harness):
    """A real socket.io-client (tests/interop/client.js): one websocket, several namespaces."""

    @classmethod
    async def connect(
        cls, url: str, namespaces: list[str], auth: dict[str, Any] | None = None
    ) -> NodeClient:
        """Start the client and wait until every namespace is connected."""
        client = cls(await _spawn("client.js", url, json.dumps(auth or {}), *namespaces))
        try:
            for nsp in namespaces:
                await client.wait_event(type="connect", nsp=nsp, timeout=20)
        except BaseException:
            await client.aclose()
            raise
        return client

    def sid(self, nsp: str = "/") -> str:
        sid: str = self.matching(type="connect", nsp=nsp)[-1]["sid"]
        return sid

    async def wait_event(self, timeout: float = 10, **fields: Any) -> dict[str, Any]:
        """Wait for the first event matching ``fields`` and return it."""
        return (await self._wait_matching(1, timeout, **fields))[0]


class CsrClient(_Harness):
    """A real socket.io-client that reconnects by itself (tests/interop/csr_client.js)."""

    @classmethod
    async def connect(cls, url: str, nsp: str = "/") -> CsrClient:
        """Start the client and wait until it is connected."""
        client = cls(await _spawn("csr_client.js", url, nsp))
        try:
            await client.wait_connects(1)
        except BaseException:
            await client.aclose()
            raise
        return client

    def command(self, cmd: str, **args: Any) -> None:
        """``close`` (drop the connection; it reconnects), ``disconnect``, ``connect``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")

    async def call(self, event: str, *args: Any) -> Any:
        """Emit with an ack; the server's reply."""
        call_id = len(self.events)
        self.command("call", id=call_id, event=event, args=list(args))
        reply = (await self._wait_matching(1, 10, type="reply", id=call_id))[0]
        assert reply["error"] is None, reply
        return reply["value"]

    @property
    def connects(self) -> list[dict[str, Any]]:
        """Every CONNECT: ``{sid, recovered}``."""
        return self.matching(type="connect")

    async def wait_connects(self, count: int, timeout: float = 20) -> dict[str, Any]:
        """Wait for the ``count``-th CONNECT and return it."""
        return (await self._wait_matching(count, timeout, type="connect"))[count - 1]

    def received(self, event: str) -> list[list[Any]]:
        """The arguments of every ``event`` received, the offset last when there is one."""
        return [e["args"] for e in self.matching(type="event", event=event)]


class CsrSoak(_Harness):
    """Many real reconnecting socket.io-clients in one Node process (csr_soak.js)."""

    @classmethod
    async def connect(cls, url: str, count: int) -> CsrSoak:
        """Start ``count`` clients and wait until each is connected."""
        soak = cls(await _spawn("csr_soak.js", url, str(count)))
        try:
            await soak._wait_matching(count, 30, type="connect")
        except BaseException:
            await soak.aclose()
            raise
        return soak

    def connects(self, i: int) -> int:
        """How many CONNECTs client ``i`` has had."""
        return len(self.matching(type="connect", i=i))

    def close(self, i: int) -> None:
        """Close client ``i``'s Engine.IO connection (it reconnects by itself)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": "close", "i": i}).encode() + b"\n")

    async def report(self) -> list[dict[str, Any]]:
        """Every client's ``{i, sids, recovered, numbers, offsets}``."""
        reports = len(self.matching(type="report"))
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"cmd": "report"}\n')
        clients: list[dict[str, Any]] = (await self._wait_matching(reports + 1, 20, type="report"))[
            -1
        ]["clients"]
        return clients
