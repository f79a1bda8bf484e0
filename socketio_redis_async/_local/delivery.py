"""Delivery to this server's clients: one encoding per packet, slow consumers cut loose.

A packet is encoded once and the same bytes go to every recipient: written straight to
an idle aiohttp websocket (``direct_writes``), queued for engine.io's writer otherwise. Every
``CHECK_EVERY``-th delivery (and every volatile one) looks at the recipients' backlog:
a connection still ``max_socket_backlog`` packets behind once its writer had a turn is
disconnected as a slow consumer, and a volatile packet skips connections that are behind
(Node drops it when the transport is not writable).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import socketio
from engineio import packet as eio_packet

from .backlog import CHECK_EVERY, VOLATILE_BACKLOG, abort_connection, backlog
from .direct_writes import DirectWrites
from .host import Host

Recipients = list[tuple[str, str]]
EVENT_TYPE = 2  # socket.io EVENT packet type
_MESSAGE = eio_packet.MESSAGE
_TEXT_PACKET = socketio.packet.Packet
_WRITER_TURNS = 8  # loop turns python-engineio's writer needs to take a queued batch


def encode_event_text(json_module: Any, nsp: str, data: list[Any]) -> str:
    """What ``socketio.packet.Packet(EVENT, data, nsp).encode()`` returns for data without
    bytes, without building the object (python-socketio's text packet format)."""
    prefix = "2" if nsp == "/" else f"2{nsp},"
    text: str = json_module.dumps(data, separators=(",", ":"))
    return prefix + text


class Delivery:
    """Sends packets to local clients of one python-socketio server."""

    def __init__(
        self,
        manager: Host,
        max_socket_backlog: int | None,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        logger: logging.Logger,
    ) -> None:
        self._manager = manager
        self._limit = max_socket_backlog
        self._spawn = spawn
        self._logger = logger
        self._countdown = 1
        self._slow: set[str] = set()
        self.slow_consumers = 0
        self.volatile_skipped = 0
        self._last_slow_log = -1e9
        self._ack_expiry: dict[int, asyncio.TimerHandle] = {}
        self._expiry_ids = itertools.count()
        self.direct = DirectWrites(logger)

    def stats(self) -> dict[str, int]:
        """Slow consumers cut loose, volatile packets skipped, frames written directly."""
        return {
            "slow_consumers_disconnected": self.slow_consumers,
            "volatile_skipped": self.volatile_skipped,
            "direct_writes": self.direct.written,
        }

    def close(self) -> None:
        """Stop the ack expiry timers and the direct writes still waiting (on close)."""
        self.direct.close()
        for timer in self._ack_expiry.values():
            timer.cancel()
        self._ack_expiry.clear()

    async def deliver(
        self,
        nsp: str,
        data: list[Any],
        recipients: Recipients,
        binary: bool | None = None,
        volatile: bool = False,
    ) -> None:
        """Encode the packet once and hand the same bytes to every recipient."""
        if recipients and (volatile or self._backlog_due()):
            recipients = await self._writable(recipients, volatile)
        if not recipients:
            return
        server = self._manager.server
        packet_class = server.packet_class
        if binary is False and getattr(packet_class, "plain", packet_class) is _TEXT_PACKET:
            encoded: Any = encode_event_text(packet_class.json, nsp, data)
        else:
            encoded = packet_class(EVENT_TYPE, namespace=nsp, data=data, binary=binary).encode()
        send = server._send_eio_packet
        if isinstance(encoded, list):
            # Binary: engine.io caches one encoding per packet object, and websocket and
            # polling clients need different ones, so each recipient gets its own objects.
            for _, eio_sid in recipients:
                for part in encoded:
                    await send(eio_sid, eio_packet.Packet(_MESSAGE, part))
            return
        pkt = eio_packet.Packet(_MESSAGE, encoded)
        direct = self.direct
        if not direct.enabled:
            for _, eio_sid in recipients:
                await send(eio_sid, pkt)
            return
        eio_sids = [eio_sid for _, eio_sid in recipients]
        for eio_sid in direct.write(server.eio.sockets, eio_sids, pkt.encode().encode()):
            await send(eio_sid, pkt)

    async def deliver_with_acks(
        self,
        nsp: str,
        data: list[Any],
        recipients: Recipients,
        callback: Callable[..., Any],
        expire_after: float | None = None,
    ) -> list[tuple[str, int]]:
        """Send with a fresh ack id per recipient; return the ``(sid, ack_id)`` pairs.

        With ``expire_after``, the callbacks are forgotten after that many seconds.
        """
        manager = self._manager
        server = manager.server
        ack_ids = []
        for sid, eio_sid in recipients:
            ack_id = manager._generate_ack_id(sid, callback)
            ack_ids.append((sid, ack_id))
            pkt = server.packet_class(EVENT_TYPE, namespace=nsp, data=data, id=ack_id)
            await server._send_packet(eio_sid, pkt)
        if expire_after is not None:
            self.expire_acks(ack_ids, expire_after)
        return ack_ids

    def expire_acks(self, ack_ids: list[tuple[str, int]], timeout: float) -> None:
        """Forget these ack callbacks after ``timeout`` seconds if the clients never acked."""
        if not ack_ids:
            return
        key = next(self._expiry_ids)
        self._ack_expiry[key] = asyncio.get_running_loop().call_later(
            timeout, self._forget_acks, key, ack_ids
        )

    def _forget_acks(self, key: int, ack_ids: list[tuple[str, int]]) -> None:
        self._ack_expiry.pop(key, None)
        for sid, ack_id in ack_ids:
            callbacks = self._manager.callbacks.get(sid)
            if callbacks is not None:
                callbacks.pop(ack_id, None)

    def _backlog_due(self) -> bool:
        """Whether this delivery checks the recipients' backlog (every CHECK_EVERY-th)."""
        if self._limit is None:
            return False
        self._countdown -= 1
        if self._countdown > 0:
            return False
        self._countdown = CHECK_EVERY
        return True

    async def _writable(self, recipients: Recipients, volatile: bool) -> Recipients:
        """The recipients minus slow consumers (disconnected) and, for a volatile packet,
        minus the connections that are behind."""
        limit = self._limit
        if volatile:
            floor = VOLATILE_BACKLOG if limit is None else min(limit, VOLATILE_BACKLOG)
        else:
            assert limit is not None
            floor = limit
        get = self._manager.server.eio.sockets.get
        behind = {eio for _, eio in recipients if backlog(get(eio)) >= floor}
        if not behind:
            return recipients
        skip = set()
        for eio_sid in behind:
            waiting = backlog(get(eio_sid))
            if eio_sid in self._slow:
                skip.add(eio_sid)  # being disconnected
            elif limit is not None and waiting >= limit:
                waiting = await _settle(get, eio_sid, limit)
                if waiting >= limit:
                    self._slow_consumer(eio_sid, waiting)
                    skip.add(eio_sid)
            if volatile and eio_sid not in skip and waiting >= VOLATILE_BACKLOG:
                self.volatile_skipped += 1
                skip.add(eio_sid)
        return [pair for pair in recipients if pair[1] not in skip]

    def _slow_consumer(self, eio_sid: str, waiting: int) -> None:
        """Disconnect a connection whose client does not read what it is sent."""
        if eio_sid in self._slow:
            return
        self._slow.add(eio_sid)
        self.slow_consumers += 1
        now = asyncio.get_running_loop().time()
        if now - self._last_slow_log >= 1.0:
            self._last_slow_log = now
            self._logger.warning(
                "disconnecting slow consumer %s: %d packets waiting (max_socket_backlog=%s); "
                "%d disconnected so far",
                eio_sid,
                waiting,
                self._limit,
                self.slow_consumers,
            )
        self._spawn(self._abort_slow(eio_sid))

    async def _abort_slow(self, eio_sid: str) -> None:
        try:
            await abort_connection(self._manager.server, eio_sid)
        finally:
            self._slow.discard(eio_sid)


async def _settle(get: Callable[[str], Any], eio_sid: str, limit: int) -> int:
    """The backlog once the connection's writer had a chance to run.

    A burst from this very task (emits that never yield) fills even a healthy queue; its
    writer empties it within a few loop turns, a blocked one never does.
    """
    waiting = limit
    for _ in range(_WRITER_TURNS):
        await asyncio.sleep(0)
        waiting = backlog(get(eio_sid))
        if waiting < limit:
            break
    return waiting
