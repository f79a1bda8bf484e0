"""The subscriptions of one kind (channels or patterns) on the pub/sub connection.

Pure bookkeeping for the subscriber: what is wanted, what was sent, and who waits for
Redis to confirm what. ``plan`` turns the difference into SUBSCRIBE/UNSUBSCRIBE commands
of at most ``CHUNK`` names; a waiter resolves only with the confirmation of a SUBSCRIBE
sent after it began waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

CHUNK = 1000


class Subscriptions:
    """One kind of subscription (channels or patterns): wanted, sent, and who waits."""

    def __init__(
        self,
        subscribe: str,
        unsubscribe: str,
        dirty: asyncio.Event,
        group: Callable[[str], object] | None = None,
    ) -> None:
        self.subscribe = subscribe
        self.unsubscribe = unsubscribe
        # Names that may share one command have the same group (a Redis Cluster refuses
        # an SSUBSCRIBE whose channels are in different hash slots: CROSSSLOT).
        self._group = group
        self._leaving: dict[str, int] = {}  # UNSUBSCRIBEs sent and not yet confirmed
        self.wanted: set[str] = set()
        self._dirty = dirty
        self._sent: set[str] = set()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._inflight: dict[str, deque[list[asyncio.Future[None]]]] = {}

    def want(self, name: str) -> None:
        if name not in self.wanted:
            self.wanted.add(name)
            self._dirty.set()

    def unwant(self, name: str) -> None:
        if name in self.wanted:
            self.wanted.discard(name)
            for fut in self._waiting.pop(name, ()):
                _resolve(fut)
            self._dirty.set()

    def waiter(self, name: str) -> asyncio.Future[None] | None:
        """A future resolved by the confirmation of a SUBSCRIBE sent from now on."""
        if name not in self.wanted:
            return None
        inflight = self._inflight.get(name)
        if name in self._sent and not inflight:
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if inflight:
            inflight[-1].append(fut)
        else:
            self._waiting.setdefault(name, []).append(fut)
        return fut

    def reset(self) -> None:
        """A new connection: nothing is subscribed; whoever waited keeps waiting."""
        self._sent.clear()
        self._leaving.clear()
        for name, batches in self._inflight.items():
            for batch in batches:
                self._waiting.setdefault(name, []).extend(batch)
        self._inflight.clear()

    def plan(self) -> list[list[str]]:
        """The commands that bring Redis in line with ``wanted``, as argument lists."""
        commands = []
        for chunk in self._chunks(self.wanted - self._sent):
            for name in chunk:
                self._sent.add(name)
                batch = self._waiting.pop(name, [])
                self._inflight.setdefault(name, deque()).append(batch)
            commands.append([self.subscribe, *chunk])
        for chunk in self._chunks(self._sent - self.wanted):
            self._sent.difference_update(chunk)
            for name in chunk:
                self._leaving[name] = self._leaving.get(name, 0) + 1
            commands.append([self.unsubscribe, *chunk])
        return commands

    def _chunks(self, names: set[str]) -> Iterable[list[str]]:
        if self._group is None:
            yield from _chunks(list(names))
            return
        groups: dict[object, list[str]] = {}
        for name in names:
            groups.setdefault(self._group(name), []).append(name)
        for members in groups.values():
            yield from _chunks(members)

    def left(self, name: str) -> bool:
        """An unsubscription of ``name`` arrived: True if this side asked for it, False
        if Redis ended the subscription by itself (a sharded channel's slot moved)."""
        leaving = self._leaving.get(name, 0)
        if leaving > 1:
            self._leaving[name] = leaving - 1
        else:
            self._leaving.pop(name, None)
        return leaving > 0 or name not in self._sent

    def confirmed(self) -> int:
        """How many sent subscriptions Redis has confirmed."""
        return sum(1 for name in self._sent if name not in self._inflight)

    @property
    def settled(self) -> bool:
        """Every SUBSCRIBE sent so far is confirmed."""
        return not self._inflight

    def confirm(self, name: str) -> None:
        batches = self._inflight.get(name)
        if not batches:
            return
        for fut in batches.popleft():
            _resolve(fut)
        if not batches:
            del self._inflight[name]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
