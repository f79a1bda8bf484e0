"""Messages received from the transport: routed by channel, decoded by the wire format,
and handed to their layer.

Broadcasts go to local delivery, requests to the responders, answers to the requests
layer, and bridge messages to the bridge. Whatever does not decode is dropped and
counted, never raised into the listener (a throttled warning says what and why).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .._errors import MalformedMessage
from .._local.delivery import Delivery
from .._local.sockets import LocalSockets
from .._options import Options
from .._protocol.channels import Kind
from .._protocol.messages import Broadcast, Request
from .._protocol.wire import Incoming, WireFormat
from .bridge import Bridge
from .plan import NamespacePlan
from .requests import Requester
from .responders import Responders


class Receiver:
    """Routes each message the transport receives (the transport's ``on_message``)."""

    def __init__(
        self,
        *,
        uid: Callable[[], str],
        wire: WireFormat,
        options: Options,
        plan: NamespacePlan,
        local: LocalSockets,
        delivery: Delivery,
        responders: Responders,
        requests: Requester,
        bridge: Bridge | None,
        logger: logging.Logger,
    ) -> None:
        self._uid = uid
        self._wire = wire
        self._options = options
        self._plan = plan
        self._local = local
        self._delivery = delivery
        self._responders = responders
        self._requests = requests
        self._bridge = bridge
        self._logger = logger
        self.dropped = 0
        self.offsets = False
        """Connection-state recovery: append each broadcast entry's id to its packet."""
        self.positions: dict[bytes, bytes] = {}
        """Per stream, the entry whose recipients were chosen last."""
        self._last_drop_log = -1e9
        self._last_unusable_log = -1e9

    async def on_message(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        """One message from the transport (``pattern`` set for a PSUBSCRIBE match)."""
        if pattern is not None:
            channels = self._plan.pattern_route(pattern)
            if channels is None:
                return
            room = channels.room_of(channel.decode(errors="replace"))
            if room is None or (room and not self._local.has_room(channels.nsp, room)):
                return
            kind = Kind.BROADCAST
        else:
            route = self._plan.route(channel)
            if route is None:
                if self._bridge is not None and channel == self._bridge.channel.encode():
                    await self._on_bridge(channel, payload)
                return
            kind, channels = route
        if self._too_large(channel, payload, kind):
            return
        nsp = channels.nsp
        try:
            await self._handle(nsp, self._wire.decode(kind, nsp, payload, self._uid()))
        except MalformedMessage as exc:
            self._drop(channel, str(exc))

    async def _handle(self, nsp: str, msg: Incoming | None, offset: bytes | None = None) -> None:
        if isinstance(msg, Broadcast):
            recipients = self._local.recipients(nsp, msg.rooms, msg.except_rooms)
            volatile = msg.flags.get("volatile") is True
            data = msg.data if offset is None or volatile else [*msg.data, offset.decode()]
            await self._delivery.deliver(nsp, data, recipients, msg.binary, volatile)
        elif isinstance(msg, Request):
            await self._responders.respond(nsp, msg)
        elif msg is not None:
            self._requests.on_response(msg)

    async def on_entry(self, stream: bytes, entry_id: bytes, fields: list[bytes]) -> None:
        """One stream entry (the transport's ``on_entry``), for any namespace: those this
        server does not serve are skipped, as Node does."""
        limit = self._options.max_message_size
        if sum(map(len, fields)) > limit:
            self._drop(stream, f"entry {entry_id!r} is over the {limit} bytes allowed")
            return
        self.positions[stream] = entry_id
        try:
            nsp, msg = self._wire.decode_entry(fields, self._uid())
            if nsp in self._plan:
                await self._handle(nsp, msg, entry_id if self.offsets else None)
        except MalformedMessage as exc:
            self._drop(stream, f"entry {entry_id!r}: {exc}")

    async def _on_bridge(self, channel: bytes, payload: bytes) -> None:
        """A message on python-socketio's AsyncRedisManager channel (bridge mode)."""
        limit = self._options.max_message_size
        if len(payload) > limit:
            self._drop(channel, f"{len(payload)} bytes is over the {limit} bytes allowed")
            return
        assert self._bridge is not None
        try:
            await self._bridge.on_message(payload)
        except MalformedMessage as exc:
            self._drop(channel, str(exc))

    def _too_large(self, channel: bytes, payload: bytes, kind: Kind) -> bool:
        """Drop (and count) a payload over the size allowed on its kind of channel."""
        limit = self._options.max_message_size
        if kind == Kind.RESPONSE:
            limit = self._options.max_answer_size
        if len(payload) <= limit:
            return False
        self._drop(channel, f"{len(payload)} bytes is over the {limit} bytes allowed")
        return True

    def _drop(self, channel: bytes, reason: str) -> None:
        self.dropped += 1
        now = asyncio.get_running_loop().time()
        if now - self._last_drop_log >= 1.0:
            self._last_drop_log = now
            self._logger.warning(
                "dropped a malformed message on %r: %s (%d dropped so far)",
                channel,
                reason,
                self.dropped,
            )

    def on_unusable_answer(self, answer: dict[str, Any], exc: Exception) -> None:
        """An answer that counted but could not be read (logged, throttled)."""
        now = asyncio.get_running_loop().time()
        if now - self._last_unusable_log >= 1.0:
            self._last_unusable_log = now
            self._logger.warning(
                "ignored an unusable answer from server %s to request %s (%s: %s); "
                "%d unusable answers so far",
                str(answer.get("uid", "(unsigned)"))[:40],
                str(answer.get("requestId"))[:40],
                type(exc).__name__,
                str(exc)[:100],
                self._requests.pending.unusable,
            )
