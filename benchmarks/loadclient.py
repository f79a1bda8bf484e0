"""The load-client process: many lightweight Socket.IO connections, counted per group.

``python -m benchmarks.loadclient`` reads one JSON command per line on stdin and answers
one JSON line per command on stdout (``{"id": N, "ok": true, "result": ...}``), after a
first ``{"ready": true, "pid": N}`` line; it exits when stdin closes. Commands:

* ``connect {group, host, port, n, rooms}``: open ``n`` connections that join ``rooms``;
  their events count towards ``group``.
* ``arm {group, total, latency}``, ``wait {group, timeout}``, ``stats {group}``: see
  ``counting.Counter``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from .counting import Counter
from .wsclient import SocketIOClient, connect


class LoadClients:
    """Connections grouped by name; each group has one counter."""

    def __init__(self) -> None:
        self.counters: dict[str, Counter] = {}
        self.clients: list[SocketIOClient] = []

    def counter(self, group: str) -> Counter:
        return self.counters.setdefault(group, Counter())

    async def run(self, cmd: dict[str, Any]) -> Any:
        name = cmd["cmd"]
        if name == "connect":
            counter = self.counter(cmd["group"])
            auth = {"rooms": cmd.get("rooms", [])}
            for _ in range(int(cmd["n"])):
                client = await connect(cmd["host"], int(cmd["port"]), auth, counter)
                self.clients.append(client)
            return len(self.clients)
        if name == "arm":
            self.counter(cmd["group"]).arm(int(cmd["total"]), bool(cmd.get("latency")))
            return None
        if name == "wait":
            return await self.counter(cmd["group"]).wait(float(cmd["timeout"]))
        if name == "stats":
            return self.counter(cmd["group"]).stats()
        raise ValueError(f"unknown command {name!r}")


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients = LoadClients()
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)

    async def handle(line: bytes) -> None:
        cmd = json.loads(line)
        try:
            reply = {"id": cmd.get("id"), "ok": True, "result": await clients.run(cmd)}
        except Exception as exc:
            reply = {"id": cmd.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    tasks: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        task = loop.create_task(handle(line))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for client in clients.clients:
        client.close()


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
