"""The requests layer: rounds of requests to the other servers, and their answers.

``Requester`` runs a whole round over a narrow ``Bus`` (count servers, name live
servers, publish, keep a namespace served): publish, collect, and time out naming the
silent servers. The entries it waits on are kept in ``pending``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from .._errors import AnswerTooLargeError, RequestTimeoutError
from .._protocol import answers
from .pending import (
    AckCollector,
    AckRequests,
    Build,
    Extract,
    Pending,
    PendingRequests,
    fail_closed,
)

__all__ = ["AckCollector", "AckRequests", "Bus", "PendingRequests", "Requester"]


class Bus(Protocol):
    """What a round of requests needs from the rest of the adapter."""

    @property
    def uid(self) -> str: ...

    def serving(self, nsp: str) -> AbstractAsyncContextManager[Any]:
        """Keep ``nsp``'s request and response channels subscribed meanwhile."""

    async def count_servers(self, nsp: str) -> int:
        """Servers listening on ``nsp``'s request channel, this one included if serving."""

    async def live_servers(self, nsp: str) -> list[str]:
        """Uids of the servers listening on their own response channel of ``nsp``."""

    async def publish_request(self, nsp: str, request: dict[str, Any]) -> None:
        """Publish a request on ``nsp``'s request channel."""


class Requester:
    """Runs request rounds: publish, collect, time out naming the silent servers."""

    def __init__(
        self,
        bus: Bus,
        timeout: float,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        on_unusable: Callable[[dict[str, Any], Exception], None],
        max_answer_size: int,
    ) -> None:
        self._bus = bus
        self._timeout = timeout
        self._max_expanded = 8 * max_answer_size
        self.pending = PendingRequests(on_unusable)
        self.acks = AckRequests(spawn)
        self._live_seen: dict[str, tuple[float, list[str]]] = {}
        self._collectors: set[AckCollector] = set()

    def __contains__(self, request_id: object) -> bool:
        """Whether this server is waiting on ``request_id`` (answers or acks)."""
        return request_id in self.pending or request_id in self.acks

    def clear(self) -> None:
        """Stop every wait (on close)."""
        self.acks.clear()
        self.pending.clear()
        for collector in self._collectors:
            fail_closed(collector.done)
        self._collectors.clear()
        self._live_seen.clear()

    def forget(self, nsp: str) -> None:
        """``nsp`` is no longer served: drop what was noted about it."""
        self._live_seen.pop(nsp, None)

    def on_response(self, response: dict[str, Any]) -> None:
        """An answer arrived on a response channel."""
        if isinstance(response.get(answers.ZLIB), bytes):
            response = answers.expand(response, self._max_expanded)
        if not self.acks.on_response(response):
            self.pending.on_response(response)

    async def gather(
        self,
        nsp: str,
        build: Build,
        extract: Extract,
        *,
        what: str | None,
        expected: int | None = None,
        timeout: float | None = None,
    ) -> list[Any]:
        """Publish ``build(request_id)`` and collect one extracted value per answering server.

        ``expected`` defaults to the server count minus this server; with no other server
        there is no request at all. On timeout raise RequestTimeoutError: "timeout reached
        while waiting for <what> response", or Node's serverSideEmit text when ``what`` is
        None, with the partial answers and the silent servers. If some server answered that
        its answer was over its ``max_answer_size``, raise AnswerTooLargeError.
        """
        async with self._bus.serving(nsp):
            if expected is None:
                expected = await self._bus.count_servers(nsp) - 1
            if expected <= 0:
                return []
            await self._remember_live(nsp)
            request_id, entry = self.pending.open(expected, extract)
            try:
                request = {**build(request_id), answers.ZLIB: True}
                await self._bus.publish_request(nsp, request)
                await self._wait(nsp, entry, what, timeout or self._timeout)
                return list(entry.responses)
            finally:
                self.pending.close(request_id)

    async def _wait(self, nsp: str, entry: Pending, what: str | None, timeout: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(entry.done), timeout)
        except asyncio.TimeoutError:
            if what is None:
                message = (
                    f"timeout reached: only {len(entry.responses)} responses received "
                    f"out of {entry.expected}"
                )
            else:
                message = f"timeout reached while waiting for {what} response"
            silent = await self.silent_servers(nsp, entry.signers)
            raise RequestTimeoutError(
                message, list(entry.responses), silent, entry.unsigned
            ) from None
        if entry.errors:
            raise AnswerTooLargeError(
                "; ".join(error for _, error in entry.errors),
                list(entry.responses),
                [uid for uid, _ in entry.errors],
            )

    async def collect_acks(
        self, nsp: str, servers: int, wait: float, deliver: Callable[[AckCollector, str], Any]
    ) -> list[Any]:
        """Broadcast with acks: ``deliver(collector, request_id)`` publishes and delivers;
        wait until every server reported and acked, or raise RequestTimeoutError."""
        if servers > 1:
            await self._remember_live(nsp)
        collector = AckCollector(max(servers, 1))
        request_id = self.acks.add(collector.on_ack, wait, on_count=collector.on_count)
        self._collectors.add(collector)
        try:
            await deliver(collector, request_id)
            try:
                await asyncio.wait_for(asyncio.shield(collector.done), wait)
            except asyncio.TimeoutError:
                silent = []
                if collector.reported < collector.servers:
                    silent = await self.silent_servers(nsp, collector.reporters)
                raise RequestTimeoutError(
                    "operation has timed out", list(collector.responses), silent
                ) from None
            return list(collector.responses)
        finally:
            self._collectors.discard(collector)
            self.acks.discard(request_id)

    async def _remember_live(self, nsp: str) -> None:
        """Note the live servers of ``nsp`` at most once per request timeout, so that a
        server that dies while a request waits for it can still be named as silent.

        PUBSUB CHANNELS scans every channel in Redis, so it is not sent for every request.
        """
        now = asyncio.get_running_loop().time()
        seen = self._live_seen.get(nsp)
        if seen is None or now - seen[0] >= self._timeout:
            self._live_seen[nsp] = (now, await self._bus.live_servers(nsp))

    async def silent_servers(self, nsp: str, answered: set[str]) -> list[str]:
        """Servers live now or when the request began that did not answer, this one aside."""
        live = set(await self._bus.live_servers(nsp))
        live.update(self._live_seen.get(nsp, (0.0, []))[1])
        live.discard(self._bus.uid)
        return sorted(live - answered)
