"""The slot map of the sharded transport: which node owns each channel, kept current.

``run`` reads ``CLUSTER SLOTS`` from the first node that answers (the seed and the
known owners, those whose link is failing last); a standalone Redis 7 answers "cluster
support disabled" and is the one owner, ``STANDALONE``. Each reading is handed to
``apply``, then read again once ``mark_stale`` is called (a link failed, Redis pushed
``sunsubscribe``, a publish was answered ``MOVED``, a master did not answer), after a
short pause so a failover that moves several slots is read once. ``version`` counts the
readings applied, so a publish answered ``MOVED`` can wait for a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import anyio

from .._errors import RedisCommandError
from .commands import describe
from .shards import STANDALONE, Address, NodeConnections, parse_slots, slot_of


class SlotMap:
    """The owner of every hash slot, read from any node that answers, again when stale."""

    def __init__(
        self,
        nodes: NodeConnections,
        seed: Address,
        *,
        where: str,
        logger: logging.Logger,
        failing: Callable[[], set[Address]],
        apply: Callable[[], None],
    ) -> None:
        """``failing()``: the nodes whose link is failing; ``apply()``: after each reading."""
        self._nodes = nodes
        self._seed = seed
        self._where = where
        self._logger = logger
        self._failing = failing
        self._apply = apply
        self.cluster = False
        self.owners: list[Address] = []
        self.version = 0  # readings applied so far
        self.last_error: tuple[float, str | None] = (0.0, None)
        self._ready: asyncio.Event | None = None  # set once the topology is known
        self._stale: asyncio.Event | None = None
        self._next: asyncio.Event | None = None  # set (and replaced) by each reading

    def start(self) -> None:
        """Before ``run`` is started: its events, created in the running event loop."""
        self._ready, self._stale, self._next = asyncio.Event(), asyncio.Event(), asyncio.Event()

    def owner(self, channel: str) -> Address:
        """The node that owns ``channel`` (``STANDALONE`` if not a cluster)."""
        return self.owners[slot_of(channel)] if self.cluster else STANDALONE

    def masters(self) -> list[Address]:
        """Every node that owns a slot (``STANDALONE`` if not a cluster)."""
        return sorted(set(self.owners)) if self.cluster else [STANDALONE]

    def mark_stale(self) -> None:
        """Ask for the slot map to be read again (a no-op if not a cluster)."""
        if self.cluster and self._stale is not None:
            self._stale.set()

    async def run(self) -> None:
        """Read the slot map, and again each time it is marked stale, until cancelled."""
        assert self._stale is not None
        failures = 0
        while True:
            try:
                await self._discover()
            except Exception as exc:
                failures += 1
                self.last_error = (
                    _now(),
                    f"cannot read the shards of {self._where}: {describe(exc)}",
                )
                if failures <= 3 or failures % 30 == 0:
                    self._logger.error("%s; retrying", self.last_error[1])
                await anyio.sleep(min(1.0, 0.1 * 2 ** min(failures, 16)) * random.uniform(0.5, 1))
                continue
            failures = 0
            self._apply()
            self._applied()
            self._stale.clear()
            await self._stale.wait()
            await anyio.sleep(0.2)  # a failover changes several slots: read them once

    async def _discover(self) -> None:
        """Read the slot map from the first node that answers (standalone if not a cluster)."""
        nodes = list(dict.fromkeys([self._seed, *self.owners]))
        failing = self._failing()
        nodes.sort(key=lambda node: node in failing)  # nodes known to fail come last
        for node in nodes:
            try:
                reply = await self._nodes.command(node, "CLUSTER", "SLOTS")
            except RedisCommandError as exc:
                if "cluster support disabled" in str(exc):
                    self.cluster, self.owners = False, []
                    return
                if node == nodes[-1]:
                    raise
                continue
            self.cluster, self.owners = True, parse_slots(reply, node)
            return

    def _applied(self) -> None:
        """One more reading applied: wake whoever waits for it."""
        assert self._ready is not None and self._next is not None
        self.version += 1
        applied, self._next = self._next, asyncio.Event()
        applied.set()
        self._ready.set()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the topology is known."""
        if self._ready is None or self.version:
            return self._ready is not None
        with anyio.move_on_after(timeout):
            await self._ready.wait()
            return True
        return False

    async def wait_newer(self, version: int, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) for a topology reading after ``version``."""
        with anyio.move_on_after(timeout):
            while self.version <= version and self._next is not None:
                await self._next.wait()
            return self.version > version
        return False


def _now() -> float:
    return asyncio.get_running_loop().time()
