"""In-process Socket.IO servers with fake Engine.IO sockets, for scenarios 3 and 6.

No network: every socket is a real ``engineio.async_socket.AsyncSocket`` registered in
``sio.eio.sockets`` and connected to namespace ``/`` through python-socketio's own
CONNECT handling, but ``sio.eio.send_packet`` is replaced by a coroutine that only
counts, identically for every contender, so what is timed is the manager's delivery
path and not websocket I/O.

``worker.py inproc --contender C --redis URL`` answers ``fanout {sizes, broadcasts,
reps}`` and ``memory {sockets}`` (run it once per process: it measures RSS growth).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Any

import psutil
import socketio
from engineio.async_socket import AsyncSocket

from .contenders import EVENT, build_manager, payload, start_manager, stop_manager

ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/socket.io/",
    "QUERY_STRING": "EIO=4&transport=websocket",
    "RAW_URI": "/socket.io/?EIO=4&transport=websocket",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "127.0.0.1:8000",
    "HTTP_USER_AGENT": "benchmarks/inproc",
    "HTTP_CONNECTION": "Upgrade",
    "HTTP_UPGRADE": "websocket",
}
BATCH = 500


class FakeSocketsServer:
    """An AsyncServer with the contender's manager and fake Engine.IO sockets."""

    def __init__(self, contender: str, redis_url: str) -> None:
        self.manager = build_manager(contender, redis_url, "bench")
        self.sio = socketio.AsyncServer(async_mode="asgi", client_manager=self.manager)
        self.sio.eio.send_packet = self._send_packet
        self.sent = 0
        self.sockets = 0

    async def _send_packet(self, sid: str, pkt: Any) -> None:
        self.sent += 1

    async def start(self) -> dict[str, Any]:
        await start_manager(self.sio, self.manager)
        return {}

    def commands(self) -> dict[str, Any]:
        return {"fanout": self.fanout, "memory": self.memory}

    async def stop(self) -> None:
        await stop_manager(self.manager)

    async def add_sockets(self, count: int) -> None:
        """Connect ``count`` more sockets (CONNECTs run concurrently, ``BATCH`` at a time)."""
        first = self.sockets
        for start in range(first, first + count, BATCH):
            ids = [f"eio-{i}" for i in range(start, min(start + BATCH, first + count))]
            for eio_sid in ids:
                sock = AsyncSocket(self.sio.eio, eio_sid)
                sock.connected = True
                self.sio.eio.sockets[eio_sid] = sock
                await self.sio._handle_eio_connect(eio_sid, dict(ENVIRON, REMOTE_PORT=eio_sid))
            await asyncio.gather(*(self.sio._handle_eio_message(e, "0") for e in ids))
        self.sockets += count

    def sids(self) -> list[str]:
        return [sid for sid, _ in self.manager.get_participants("/", None)]

    async def join_own_rooms(self, sids: list[str], prefix: str) -> None:
        """Socket i joins room ``<prefix>-<i>``: one room per socket."""
        for start in range(0, len(sids), BATCH):
            chunk = sids[start : start + BATCH]
            await asyncio.gather(
                *(self.sio.enter_room(sid, f"{prefix}-{start + i}") for i, sid in enumerate(chunk))
            )

    async def fanout(self, sizes: list[int], broadcasts: int, reps: int) -> list[dict[str, Any]]:
        """Time one broadcast to every socket of ``/`` at each size."""
        out: list[dict[str, Any]] = []
        for size in sizes:
            await self.add_sockets(size - self.sockets)
            await self.sio.emit(EVENT, payload(-1, time.time()))  # warm-up
            for rep in range(reps):
                sent_before, cpu_before = self.sent, time.process_time()
                durations = []
                for seq in range(broadcasts):
                    began = time.perf_counter()
                    await self.sio.emit(EVENT, payload(seq, time.time()))
                    durations.append(time.perf_counter() - began)
                    await asyncio.sleep(0.005)  # let the adapter's listener drop its own echo
                delivered = self.sent - sent_before
                out.append(
                    {
                        "size": size,
                        "rep": rep,
                        "ms_per_broadcast": statistics.median(durations) * 1000,
                        "us_per_recipient": statistics.median(durations) / size * 1e6,
                        "cpu_ms_per_broadcast": (time.process_time() - cpu_before)
                        / broadcasts
                        * 1000,
                        "delivered_ok": 1.0 if delivered == size * broadcasts else 0.0,
                    }
                )
        return out

    async def memory(self, sockets: int) -> dict[str, float]:
        """RSS growth for ``sockets`` connected sockets, then for one room per socket."""
        warm = 200
        await self.add_sockets(warm)
        await self.join_own_rooms(self.sids(), "warm")
        base = _rss()
        await self.add_sockets(sockets)
        with_sockets = _rss()
        await self.join_own_rooms(self.sids()[warm:], "room")
        with_rooms = _rss()
        scale = 10_000 / sockets / 2**20
        return {
            "mb_per_10k_sockets": (with_sockets - base) * scale,
            "mb_per_10k_rooms": (with_rooms - with_sockets) * scale,
            "rss_base_mb": base / 2**20,
        }


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)
