"""Publishing on the sharded transport: each message on the pipelined publisher of the
shard that owns its channel (SPUBLISH) or stream (XADD).

An awaited publish answered ``MOVED`` (or failed by a link that went away) is sent once
more after the slot map was read again. A queued one (``queued_emits``) is not: nobody
waits for it, and sending it again would put it after what was queued since; it is
reported as failed, and the slot map is read again (the publisher's ``on_error``), so the
next messages go to the new owner. An awaited publish first waits for what this server
queued on the other shards' connections, so what one task queues and then awaits
reaches Redis in that order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import AdapterClosedError, PublishError
from .backlog import Report
from .commands import xadd
from .publisher import Publisher
from .shard_links import ShardLinks
from .slot_map import SlotMap

MOVED = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "could not publish", "cannot open")
"""Errors after which the slot map is read again (and an awaited publish retried)."""


class ShardPublishing:
    """Routes publishes and appends to the owner's publisher."""

    def __init__(self, slots: SlotMap, links: ShardLinks, where: str, timeout: float) -> None:
        self._slots = slots
        self._links = links
        self._where = where
        self._timeout = timeout

    async def publish(self, channel: str, payload: bytes, limit: int | None = None) -> int:
        """SPUBLISH on the shard that owns ``channel``; once more after a topology change."""
        reply: int = await self._on_owner(channel, lambda p: p.publish(channel, payload, limit))
        return reply

    async def append(self, stream: str, fields: tuple[bytes, ...], max_len: int) -> bytes:
        """XADD on the shard that owns ``stream``, in order with its publishes."""
        args = xadd(stream, fields, max_len)
        entry_id: bytes = await self._on_owner(stream, lambda p: p.command(stream, *args))
        return entry_id

    async def command(self, key: str, *args: bytes) -> Any:
        """Any command on ``key`` (recovery sessions, XRANGE) on the shard that owns it,
        pipelined in order with its publishes; its reply."""
        return await self._on_owner(key, lambda p: p.command(key, *args))

    async def publish_queued(self, channel: str, payload: bytes, report: Report) -> None:
        """SPUBLISH queued on the owner's publisher, without waiting for the reply."""
        await (await self._owner(channel)).publish_queued(channel, payload, report)

    async def append_queued(
        self, stream: str, fields: tuple[bytes, ...], max_len: int, report: Report
    ) -> None:
        """XADD queued on the owner's publisher, without waiting for the reply."""
        args = xadd(stream, fields, max_len)
        await (await self._owner(stream)).command_queued(stream, report, *args)

    async def settle_queued(self, but: Publisher | None = None) -> None:
        """Wait (bounded) for what is queued on every shard's publisher (but ``but``'s)."""
        for publisher in self._links.publishers():
            if publisher is not but and publisher.unsettled:
                await publisher.settle_queued()

    def failed(self, error: PublishError) -> None:
        """A publisher's messages failed: after MOVED & co., read the slot map again."""
        if any(marker in str(error) for marker in MOVED):
            self._slots.mark_stale()

    async def _owner(self, key: str) -> Publisher:
        if self._links.closed:
            raise AdapterClosedError("this adapter was closed; create a new one")
        if not await self._slots.wait_ready(self._timeout):
            raise PublishError(f"cannot publish: the shards of {self._where} are not known yet")
        return self._links.link(self._slots.owner(key)).publisher

    async def _on_owner(self, key: str, send: Callable[[Publisher], Awaitable[Any]]) -> Any:
        for attempt in (1, 2):
            version = self._slots.version
            publisher = await self._owner(key)
            await self.settle_queued(but=publisher)
            try:
                return await send(publisher)
            except PublishError as exc:
                if attempt == 2 or not self._slots.cluster or not any(m in str(exc) for m in MOVED):
                    raise
                self._slots.mark_stale()
                if not await self._slots.wait_newer(version, self._timeout):
                    raise
        raise AssertionError("unreachable")
