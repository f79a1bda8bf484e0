"""Acks that clients on other servers send back for a BROADCAST (7) request.

Every entry expires: a timer removes it after the ack timeout, whether or not anything
arrived, so no pending entry outlives its usefulness.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ._codec import BROADCAST_ACK, BROADCAST_CLIENT_COUNT, random_id


def new_request_id() -> str:
    """A random request id, opaque to every peer."""
    return random_id(12)


@dataclass(slots=True)
class _Entry:
    callback: Callable[..., Any]
    timer: asyncio.TimerHandle
    single: bool
    on_count: Callable[[int, str | None], None] | None
    on_discard: Callable[[], None] | None


class AckRequests:
    """Pending BROADCAST requests of this server, by request id.

    ``spawn`` runs a coroutine returned by a callback in a task of its own, so that a
    slow or cluster-querying callback never blocks the listener that delivers answers.
    """

    def __init__(self, spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self._entries: dict[str, _Entry] = {}
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
        when the entry goes."""
        request_id = new_request_id()
        timer = asyncio.get_running_loop().call_later(timeout, self.discard, request_id)
        self._entries[request_id] = _Entry(callback, timer, single, on_count, on_discard)
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
        if kind == BROADCAST_CLIENT_COUNT:
            count = response.get("clientCount")
            if (
                entry.on_count is not None
                and isinstance(count, int)
                and not isinstance(count, bool)
            ):
                uid = response.get("uid")
                entry.on_count(count, uid if isinstance(uid, str) else None)
        elif kind == BROADCAST_ACK:
            if entry.single:
                self.discard(request_id)  # type: ignore[arg-type]
            result = entry.callback(response.get("packet"))
            if inspect.iscoroutine(result):
                self._spawn(result)
        return True
