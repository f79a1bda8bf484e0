"""A TCP proxy in the test process: a load balancer whose backend can change and whose
connections can be cut, as a network does to a client that changes networks."""

from __future__ import annotations

import asyncio
import contextlib
import re

import anyio


class Proxy:
    """Forwards 127.0.0.1:``port`` to ``backend`` (a port), which ``route`` changes; or,
    round robin, to each of several backends."""

    def __init__(self, *backends: int) -> None:
        self.backends = list(backends)
        self._turn = 0
        self.port = 0
        self.connections = 0
        self.refusing = False
        """While True, new connections are dropped at once (the client keeps retrying)."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._client_side: set[asyncio.StreamWriter] = set()
        self._kept: set[asyncio.StreamWriter] = set()  # server sides left open by a cut
        self._peers: dict[asyncio.StreamWriter, asyncio.StreamWriter] = {}  # client -> server
        self._tags: dict[asyncio.StreamWriter, tuple[str, int]] = {}  # client -> (tag, backend)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._kept.clear()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        with anyio.move_on_after(5):
            await self._server.wait_closed()

    def route(self, *backends: int) -> None:
        """Send new connections to these backends (round robin) from now on."""
        self.backends = list(backends)

    def tags_on(self, backend: int) -> set[str]:
        """The tags of the live client connections to ``backend``."""
        return {tag for w, (tag, port) in self._tags.items() if port == backend and _open(w)}

    def cut_tag(self, tag: str) -> bool:
        """Drop the connections of the client tagged ``tag`` (``c=<tag>`` in its first
        request), both ways; False if it has none."""
        found = False
        for writer, (name, _) in list(self._tags.items()):
            if name == tag and _open(writer):
                found = True
                for side in (writer, self._peers.get(writer)):
                    if side is not None and _open(side):
                        side.transport.abort()
        return found

    def cut(self, client_side_only: bool = False) -> None:
        """Drop every connection, both ways (RST), as a lost network does; or only the
        client's side, so that the server still holds a connection nobody uses (as until
        a ping timeout after a phone changed networks)."""
        for writer in list(self._writers):
            if client_side_only and writer not in self._client_side:
                self._kept.add(writer)
                continue
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.refusing:
            writer.transport.abort()
            return
        backend = self.backends[self._turn % len(self.backends)]
        self._turn += 1
        try:
            first = await reader.read(65536)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
        except OSError:
            writer.transport.abort()
            return
        up_writer.write(first)
        tag = _TAG.search(first)
        self._tags[writer] = (tag.group(1).decode() if tag else "", backend)
        self._writers.update((writer, up_writer))
        self._client_side.add(writer)
        self._peers[writer] = up_writer
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(_pipe(src, dst, self._kept))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


_TAG = re.compile(rb"[?&]c=([0-9A-Za-z_-]+)")


def _open(writer: asyncio.StreamWriter) -> bool:
    return not writer.transport.is_closing()


async def _pipe(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, kept: set[asyncio.StreamWriter]
) -> None:
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while data := await src.read(65536):
            if dst.transport.is_closing():
                continue  # the other side was cut: what comes is lost, the link stays
            dst.write(data)
            await dst.drain()
    if dst not in kept and not dst.transport.is_closing():
        dst.transport.abort()
