"""The requests layer: requests this server sent, and the answers it collects for them.

One place for every wait on other servers: ``PendingRequests`` collects the answers to
types 0-6 (it is also what the CLI collects with), ``AckRequests`` the client counts and
acks of BROADCAST (7) requests, and ``Requester`` runs a whole round over a narrow
``Bus`` (count servers, name live servers, publish, keep a namespace served). No entry
outlives its requester: each is removed on success, timeout, cancellation and close.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._errors import AnswerTooLargeError, MalformedMessage, RequestTimeoutError
from .._protocol import answers
from .._protocol.messages import RequestType, new_request_id

Extract = Callable[[dict[str, Any]], Any]
"""Turns one answer into the value to collect; raises KeyError/TypeError if unusable."""
Build = Callable[[str], dict[str, Any]]
"""Builds the request to publish, given its request id."""


@dataclass(slots=True)
class Pending:
    """One request's answers so far."""

    expected: int
    extract: Extract
    done: asyncio.Future[None]
    responses: list[Any] = field(default_factory=list)
    signers: set[str] = field(default_factory=set)
    unsigned: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    """``(uid, error)`` of the servers that answered with an error instead."""


class PendingRequests:
    """The requests waiting for answers, by request id."""

    def __init__(self, on_unusable: Callable[[dict[str, Any], Exception], None]) -> None:
        self._entries: dict[str, Pending] = {}
        self._on_unusable = on_unusable
        self.unusable = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._entries

    def open(self, expected: int, extract: Extract) -> tuple[str, Pending]:
        """Start waiting for ``expected`` answers."""
        request_id = new_request_id()
        entry = Pending(expected, extract, asyncio.get_running_loop().create_future())
        self._entries[request_id] = entry
        return request_id, entry

    def close(self, request_id: str) -> None:
        """Stop waiting (success, timeout or cancellation)."""
        entry = self._entries.pop(request_id, None)
        if entry is not None and not entry.done.done():
            entry.done.cancel()

    def clear(self) -> None:
        """Stop waiting for everything (on close)."""
        for request_id in list(self._entries):
            self.close(request_id)

    def on_response(self, response: dict[str, Any]) -> bool:
        """Record an answer if it belongs to a pending request; True if it did.

        An answer without the expected field still counts as an answer (as in Node), so
        a server that has nothing to report does not make the request time out; it is
        counted in ``unusable`` and reported to ``on_unusable``.
        """
        request_id = response.get("requestId")
        entry = self._entries.get(request_id) if isinstance(request_id, str) else None
        if entry is None or entry.done.done():
            return entry is not None
        error = response.get("error")
        if isinstance(error, str):
            entry.expected -= 1
            entry.errors.append((str(response.get("uid", "?"))[:40], error[:200]))
        else:
            self._record(entry, response)
        uid = response.get("uid")
        if isinstance(uid, str):
            entry.signers.add(uid)
        else:
            entry.unsigned += 1
        if len(entry.responses) >= entry.expected:
            entry.done.set_result(None)
        return True

    def _record(self, entry: Pending, response: dict[str, Any]) -> None:
        try:
            entry.responses.append(entry.extract(response))
        except (KeyError, TypeError, ValueError, MalformedMessage) as exc:
            entry.expected -= 1
            self.unusable += 1
            self._on_unusable(response, exc)


@dataclass(slots=True)
class _AckEntry:
    callback: Callable[..., Any]
    timer: asyncio.TimerHandle
    single: bool
    on_count: Callable[[int, str | None], None] | None
    on_discard: Callable[[], None] | None


class AckRequests:
    """Pending BROADCAST (7) requests of this server, by request id; each expires.

    ``spawn`` runs a coroutine returned by a callback in a task of its own, so that a
    slow or cluster-querying callback never blocks the listener that delivers answers.
    """

    def __init__(self, spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self._entries: dict[str, _AckEntry] = {}
        self._spawn = spawn

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._entries

    def add(
        self,
        callback: Callable[..., Any],
        timeout: float,
        *,
        single: bool = False,
        on_count: Callable[[int, str | None], None] | None = None,
        on_discard: Callable[[], None] | None = None,
    ) -> str:
        """Register ``callback`` for each ack (only the first with ``single``), ``on_count``
        for each server's client count (with its uid if signed), and ``on_discard`` for
        when the entry goes, ``timeout`` seconds from now at the latest."""
        request_id = new_request_id()
        timer = asyncio.get_running_loop().call_later(timeout, self.discard, request_id)
        self._entries[request_id] = _AckEntry(callback, timer, single, on_count, on_discard)
        return request_id

    def discard(self, request_id: str) -> None:
        """Forget a request and stop its timer."""
        entry = self._entries.pop(request_id, None)
        if entry is not None:
            entry.timer.cancel()
            if entry.on_discard is not None:
                entry.on_discard()

    def clear(self) -> None:
        """Forget every request (on close)."""
        for request_id in list(self._entries):
            self.discard(request_id)

    def on_response(self, response: dict[str, Any]) -> bool:
        """Handle a response if it belongs to a pending request; True if it did."""
        request_id = response.get("requestId")
        entry = self._entries.get(request_id) if isinstance(request_id, str) else None
        if entry is None:
            return False
        kind = response.get("type")
        if kind == RequestType.BROADCAST_CLIENT_COUNT:
            count = response.get("clientCount")
            if entry.on_count is not None and type(count) is int:
                uid = response.get("uid")
                entry.on_count(count, uid if isinstance(uid, str) else None)
        elif kind == RequestType.BROADCAST_ACK:
            if entry.single:
                self.discard(request_id)  # type: ignore[arg-type]
            result = entry.callback(response.get("packet"))
            if inspect.iscoroutine(result):
                self._spawn(result)
        return True


class AckCollector:
    """Node's broadcast-with-ack bookkeeping: done when every server reported its client
    count and that many acks arrived."""

    def __init__(self, servers: int) -> None:
        self.servers = servers
        self.reported = 0
        self.reporters: set[str] = set()
        self.expected_acks = 0
        self.responses: list[Any] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_count(self, count: int, uid: str | None) -> None:
        self.reported += 1
        if uid is not None:
            self.reporters.add(uid)
        self.expected_acks += count
        self._check()

    def on_ack(self, *args: Any) -> None:
        self.responses.append(args[0] if args else None)
        self._check()

    def _check(self) -> None:
        if (
            not self.done.done()
            and self.reported >= self.servers
            and len(self.responses) >= self.expected_acks
        ):
            self.done.set_result(None)


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

    def __contains__(self, request_id: object) -> bool:
        """Whether this server is waiting on ``request_id`` (answers or acks)."""
        return request_id in self.pending or request_id in self.acks

    def clear(self) -> None:
        """Stop every wait (on close)."""
        self.acks.clear()
        self.pending.clear()
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
