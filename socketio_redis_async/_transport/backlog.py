"""What waits for Redis in a publisher: the messages, their bound, and each one's outcome.

The backlog is every message queued or in flight, in order; its bytes are bounded (4 x
``max_message_size``): past that an awaited publish fails at once, a queued one waits for
room (at most ``publish_timeout``). Each message is settled exactly once: its waiter's
future gets the reply or the error, or, for a message nobody awaits (``queued_emits``),
its ``Report`` hears it, once per batch. Queued messages are counted in and out, so that a
publish on another connection can first wait for them (``settle``): what one task queues
and then awaits reaches Redis in that order even when the two take different connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

import anyio

from .._errors import AdapterClosedError, PublishError

Report = Callable[[int, "BaseException | None"], None]
"""``report(count, error)``: the outcome of ``count`` queued messages that nobody awaits:
``None`` once Redis accepted them, else why they were not published (PublishError, or
AdapterClosedError for those still queued when the publisher closed)."""


class Item(NamedTuple):
    channel: bytes
    payload: bytes
    future: asyncio.Future[Any] | None
    """Who awaits the reply; None for a queued message (``report`` hears it)."""
    deadline: float
    command: bytes | None = None
    """Another command, packed (``channel`` is then its key); None for a publish."""
    report: Report | None = None

    @property
    def size(self) -> int:
        return len(self.channel) + len(self.payload) + len(self.command or b"")

    @property
    def live(self) -> bool:
        """Someone still wants it: a queued message, or a waiter not cancelled."""
        return self.future is None or not self.future.done()


class Backlog:
    """The messages waiting for Redis, in order, and the outcome of each."""

    def __init__(
        self,
        limit: int,
        *,
        where: str,
        on_error: Callable[[PublishError], None] | None = None,
    ) -> None:
        self.limit = limit
        self.items: list[Item] = []  # queued, not yet taken by the writer
        self.bytes = 0  # queued or in flight
        self.entries = 0
        self.queued = 0  # messages queued without a waiter, so far
        self.settled = 0  # of those, answered or failed (in queue order)
        self.failures = 0
        self.last_error: tuple[float, str | None] = (0.0, None)  # (loop time, text)
        self.closed = False
        self._where = where
        self._on_error = on_error
        self._changed: asyncio.Event | None = None

    def full(self, size: int) -> bool:
        """Whether ``size`` more bytes would pass the bound (one message always fits)."""
        return self.bytes + size > self.limit and self.entries > 0

    def append(self, item: Item) -> None:
        """Queue ``item``: AdapterClosedError once closed, PublishError while full."""
        if self.closed:
            raise AdapterClosedError("cannot publish: the adapter is closed")
        size = item.size
        if self.full(size):
            raise self.full_error("already")
        self.items.append(item)
        self.bytes += size
        self.entries += 1
        self.queued += item.future is None

    async def room(self, size: int, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until ``size`` bytes fit; PublishError if not."""
        deadline = _now() + timeout
        while self.full(size) and not self.closed:
            if not await self.changed(deadline - _now()) and self.full(size):
                raise self.full_error(f"still, after publish_timeout={timeout:g} s,")

    def full_error(self, when: str) -> PublishError:
        error = PublishError(
            f"cannot publish to Redis at {self._where}: {self.bytes} bytes in "
            f"{self.entries} messages are {when} waiting for it (limit {self.limit} bytes, "
            "4 x max_message_size); Redis is slow or unreachable"
        )
        self.failures += 1
        self.last_error = (_now(), str(error))
        return error

    def take(self) -> list[Item]:
        """Every queued message, for the writer's next batch."""
        batch, self.items = self.items, []
        return batch

    def done(self, batch: list[Item]) -> None:
        """``batch`` left the backlog (each message settled); wake who waits for room."""
        self.bytes -= sum(item.size for item in batch)
        self.entries -= len(batch)
        self.settled += sum(item.future is None for item in batch)
        self.wake()

    def accepted(self, items: list[Item], replies: list[Any], name: str) -> list[Item]:
        """Redis answered ``items``: each waiter gets its reply, an error reply fails its
        message, the queued ones' reports hear of the rest; the messages accepted."""
        accepted = []
        for item, reply in zip(items, replies, strict=True):
            if not item.live:
                continue
            if isinstance(reply, int) or (item.command and not isinstance(reply, Exception)):
                accepted.append(item)
                if item.future is not None:
                    item.future.set_result(reply)
            else:
                command = item.command.split(b"\r\n")[2].decode() if item.command else name
                self.fail([item], PublishError(f"Redis refused {command}: {reply}"))
        _report(accepted, None)
        return accepted

    def fail(self, batch: list[Item], error: BaseException) -> None:
        """Settle every live message of ``batch`` with ``error``; a PublishError counts."""
        failed = isinstance(error, PublishError)
        if batch and failed:
            self.last_error = (_now(), str(error))
        queued = []
        for item in batch:
            if item.future is None:
                queued.append(item)
            elif item.future.done():
                continue
            else:
                item.future.set_exception(error)
            self.failures += failed
        _report(queued, error)
        if batch and self._on_error is not None and isinstance(error, PublishError):
            self._on_error(error)

    @property
    def unsettled(self) -> int:
        """Queued messages (nobody awaits them) not answered yet."""
        return self.queued - self.settled

    def wake(self) -> None:
        """Wake whoever waits for a change (``changed``)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def changed(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) for the next change; False if none came."""
        if self._changed is None:
            self._changed = asyncio.Event()
        event = self._changed
        with anyio.move_on_after(max(timeout, 0.0)):
            await event.wait()
            return True
        return False

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until every message queued so far is settled."""
        target = self.queued
        deadline = _now() + timeout
        while self.settled < target and not self.closed:
            if not await self.changed(deadline - _now()):
                return


def _now() -> float:
    return asyncio.get_running_loop().time()


def _report(items: list[Item], error: BaseException | None) -> None:
    """Tell each queued message's ``report`` how it went, once per report."""
    counts: dict[Report, int] = {}
    for item in items:
        if item.report is not None:
            counts[item.report] = counts.get(item.report, 0) + 1
    for report, count in counts.items():
        report(count, error)
