"""The CLI's link to a cluster: the adapters' own transports, so that it counts servers
over every node of a Redis Cluster and speaks either protocol (``--sharded``).

The CLI never counts as a server: with the classic protocol it listens only on the
generic response channel, with the sharded one only on a channel of its own uid.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._cluster.requests import PendingRequests
from .._errors import MalformedMessage
from .._protocol import codec, messages, sharded
from .._protocol.channels import NamespaceChannels
from .._transport.pubsub import RedisTransport
from .._transport.sharded import ShardedTransport

_LOGGER = logging.getLogger("socketio_redis_async.cli")
_LOGGER.addHandler(logging.NullHandler())
_LOGGER.propagate = False  # a one-shot command reports its own errors, in one line


class CliBus:
    """One command's transport: listen, count, publish a request, collect the answers."""

    def __init__(
        self,
        url: str,
        key: str,
        nsp: str,
        timeout: float,
        *,
        sharded_mode: bool,
        on_message: Callable[[bytes, bytes], Awaitable[None]] | None = None,
    ) -> None:
        self.sharded = sharded_mode
        self.uid = sharded.new_uid() if sharded_mode else messages.new_uid()
        self.nsp = nsp
        self.channels = (sharded.channels if sharded_mode else NamespaceChannels.build)(key, nsp)
        self.pending = PendingRequests(lambda answer, exc: None)
        self._on_message = on_message
        options: dict[str, Any] = {
            "url": url,
            "key": key,
            "redis_options": {},
            "on_message": self._received,
            "on_change": lambda subscribed: None,
            "uid": lambda: self.uid,
            "timeout": timeout,
            "publish_timeout": timeout,
            "health_check_interval": 2.0,
            "max_message_size": 512 * 1024 * 1024,
            "logger": _LOGGER,
        }
        self.transport: RedisTransport | ShardedTransport = (
            ShardedTransport(**options)
            if sharded_mode
            else RedisTransport(pub_client=None, sub_client=None, **options)
        )

    @property
    def answers(self) -> str:
        """Where answers to this tool arrive."""
        return self.channels.response_for(self.uid) if self.sharded else self.channels.response

    async def start(self, channels: list[str]) -> None:
        """Subscribe ``channels`` and return once Redis confirmed them."""
        for channel in channels:
            self.transport.want(channel)
        await self.transport.start()

    async def count_servers(self) -> int:
        return await self.transport.count_subscribers(self.channels.request)

    async def server_uids(self) -> list[str]:
        uids = self.channels.uids(await self.transport.channels(self.channels.uid_pattern))
        if self.sharded:  # this tool's own channel is one of them
            return [uid for uid in uids if sharded.is_uid(uid) and uid != self.uid]
        return uids

    async def publish_request(self, request: dict[str, Any]) -> None:
        if self.sharded:
            payload = sharded.encode_request(self.uid, self.nsp, request)
        else:
            payload = messages.encode_request(request)
        await self.transport.publish(self.channels.request, payload)

    async def _received(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        if self._on_message is not None:
            await self._on_message(channel, payload)
            return
        try:
            if self.sharded:
                answer = sharded.as_answer(sharded.decode(payload))
                if answer is not None:
                    self.pending.on_response(answer)
            else:
                self.pending.on_response(codec.decode_request(payload))
        except MalformedMessage:
            return

    async def aclose(self) -> None:
        self.pending.clear()
        await self.transport.aclose()
