"""The links of the sharded transport: one per shard in use, and the channels on each.

Every wanted channel is subscribed on the link of the node that owns its slot, as the
slot map says; a link's subscriber starts with its first channel. After each reading of
the slot map, ``apply`` moves every channel whose owner changed to the new owner's link
and closes the links left without a slot (their counters are kept, for the stats).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .._errors import AccessDeniedError
from .publisher import Publisher
from .shards import Address, Link, Publishers, Subscribers
from .slot_map import SlotMap


class ShardLinks:
    """The link of every shard this server uses, and the link each wanted channel is on."""

    def __init__(
        self, slots: SlotMap, new_link: Callable[[Address], Link], logger: logging.Logger
    ) -> None:
        """``new_link(node)``: a link to ``node``, its subscriber not started."""
        self._slots = slots
        self._new_link = new_link
        self._logger = logger
        self._closing: set[asyncio.Task[None]] = set()
        self._links: dict[Address, Link] = {}
        self._wanted: dict[str, Address | None] = {}
        self._retired: dict[str, int] = {}  # the counters of closed links
        self.closed = False  # set by the transport: no subscriber starts any more
        self.subscriber = Subscribers(self._links, self._retired)
        self.publisher = Publishers(self._links, self._retired)

    def want(self, channel: str) -> None:
        """Subscribe ``channel`` on its owner's link (once the slot map is known)."""
        if channel not in self._wanted:
            self._wanted[channel] = None
            if self._slots.version:
                self._assign(channel)

    def unwant(self, channel: str) -> None:
        """Unsubscribe ``channel`` from the link it is on."""
        if channel in self._wanted:
            node = self._wanted.pop(channel)
            if node is not None and node in self._links:
                self._links[node].subscriber.unwant(channel)

    def link(self, node: Address) -> Link:
        """The link to ``node``, made if there is none yet."""
        link = self._links.get(node)
        if link is None:
            link = self._links[node] = self._new_link(node)
        return link

    def publishers(self) -> list[Publisher]:
        """The publisher of every link."""
        return [link.publisher for link in self._links.values()]

    def failing(self) -> set[Address]:
        """The nodes whose link is failing (the slot map asks them last)."""
        return {node for node, link in self._links.items() if link.subscriber.failing}

    def denied(self) -> AccessDeniedError | None:
        """A refusal (NOAUTH, NOPERM...) some link met since it last subscribed."""
        refusals = (link.subscriber.denied for link in self._links.values())
        return next((denied for denied in refusals if denied is not None), None)

    def apply(self) -> None:
        """Move every channel to the link of its owner; close links that own nothing."""
        for channel in list(self._wanted):
            self._assign(channel)
        owners = set(self._slots.masters())
        for node in [node for node in self._links if node not in owners]:
            self._logger.warning(
                "Redis Cluster node %s:%d owns no slot any more; its channels moved", *node
            )
            link = self._links.pop(node)
            link.retire(self._retired)
            task = asyncio.get_running_loop().create_task(link.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _assign(self, channel: str) -> None:
        node = self._slots.owner(channel)
        previous = self._wanted.get(channel)
        if previous == node:
            return
        if previous is not None and previous in self._links:
            self._links[previous].subscriber.unwant(channel)
        link = self.link(node)
        link.subscriber.want(channel)
        self._wanted[channel] = node
        if link.task is None and not self.closed:
            link.task = asyncio.get_running_loop().create_task(
                link.subscriber.run(), name=f"socketio-redis-async shard {node[0]}:{node[1]}"
            )

    async def wait_all(self, timeout: float, channels: list[str] | None = None) -> bool:
        """Wait (at most ``timeout`` s) until the owners confirmed ``channels`` (all: None)."""
        names = list(self._wanted) if channels is None else channels
        by_link: dict[Address, list[str]] = {}
        for name in names:
            node = self._wanted.get(name)
            if node is not None:
                by_link.setdefault(node, []).append(name)
        results = await asyncio.gather(
            *(self._links[node].subscriber.wait(names, timeout) for node, names in by_link.items())
        )
        return all(results)

    async def stop(self) -> None:
        """Stop every link's subscriber, and wait for the links being closed."""
        for link in list(self._links.values()):
            link.subscriber.stopping = True
            if link.task is not None:
                link.task.cancel()
                await asyncio.wait([link.task], timeout=10)
        if self._closing:
            await asyncio.wait(self._closing, timeout=10)

    async def aclose(self) -> None:
        """Close every link."""
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.aclose()
