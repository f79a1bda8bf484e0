"""Every Python child process of a run: ``python -m benchmarks.worker ROLE [options]``.

Roles: ``server --contender C --redis URL --key K [--stream S]`` (``servers.py``; a
contender ending in ``-uvloop`` runs on uvloop; ``--stream``: the streams adapter's
stream), ``clients`` (``loadclients.py``) and ``inproc --contender C --redis URL``
(``inproc.py``). The role starts, the worker prints its ready line, then answers one
JSON command per stdin line (the protocol in ``children.py``) until stdin closes or
SIGTERM/SIGINT arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .contenders import EMITTER, RAW, STREAM, UVLOOP, base_contender

SHUTDOWN_SECONDS = 2.0


class Role(Protocol):
    async def start(self) -> dict[str, Any]: ...

    async def stop(self) -> None: ...

    def commands(self) -> dict[str, Callable[..., Awaitable[Any]]]: ...


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve(role: Role) -> None:
    """Start ``role``, announce it, answer commands, and stop it when told to."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready = await role.start()
    commands = role.commands()
    _reply({"ready": True, "pid": os.getpid(), **ready})
    tasks: set[asyncio.Task[None]] = set()

    async def handle(line: bytes) -> None:
        request = json.loads(line)
        ident, name = request.pop("id"), request.pop("cmd")
        try:
            if name not in commands:
                raise ValueError(f"unknown command {name!r}")
            _reply({"id": ident, "ok": True, "result": await commands[name](**request)})
        except Exception as exc:
            _reply({"id": ident, "ok": False, "error": f"{type(exc).__name__}: {exc}"})

    async def read() -> None:
        while line := await reader.readline():
            task = loop.create_task(handle(line))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        stop.set()

    reading = loop.create_task(read())
    try:
        await stop.wait()
    finally:
        # A graceful stop, but never a long one: a listener that misses its cancellation
        # would hold the role's stop().
        watchdog = threading.Timer(SHUTDOWN_SECONDS, os._exit, args=(0,))
        watchdog.daemon = True
        watchdog.start()
        for task in (reading, *tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await role.stop()


def make_role(args: argparse.Namespace) -> Role:
    # Imported here: a role's process only loads what it runs.
    if args.role == "clients":
        from .loadclients import LoadClients

        return LoadClients()
    if args.role == "inproc":
        from .inproc import FakeSocketsServer

        return FakeSocketsServer(args.contender, args.redis)
    from .servers import EmitterServer, RawServer, SocketIOServer

    if args.contender == RAW:
        return RawServer(args.redis, args.key)
    if base_contender(args.contender) == EMITTER:
        return EmitterServer(args.redis, args.key)
    return SocketIOServer(args.contender, args.redis, args.key, args.stream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("role", choices=("server", "clients", "inproc"))
    parser.add_argument("--contender", default="")
    parser.add_argument("--redis", default="")
    parser.add_argument("--key", default="bench")
    parser.add_argument("--stream", default=STREAM)
    args = parser.parse_args()

    async def run() -> None:
        await serve(make_role(args))

    if args.contender.endswith(UVLOOP):
        import uvloop

        uvloop.run(run())
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
