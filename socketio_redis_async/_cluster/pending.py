"""The bookkeeping of requests in flight: what waits for which answers.

``PendingRequests`` collects the answers to types 0-6 (it is also what the CLI collects
with), ``AckRequests`` the client counts and acks of BROADCAST (7) requests, and
``AckCollector`` decides when a broadcast with acks is complete. No I/O; no entry
outlives its requester: each is removed on success, timeout, cancellation and close.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .._errors import AdapterClosedError, MalformedMessage
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
        """Stop waiting for everything (on close): each waiter gets AdapterClosedError."""
        for entry in self._entries.values():
            fail_closed(entry.done)
        self._entries.clear()

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


def fail_closed(done: asyncio.Future[None]) -> None:
    """End a wait because the adapter closed: its waiter raises AdapterClosedError at once
    (the future is marked retrieved: a waiter's shield passes the error on)."""
    if not done.done():
        done.set_exception(AdapterClosedError("the adapter was closed while this call waited"))
        done.exception()
