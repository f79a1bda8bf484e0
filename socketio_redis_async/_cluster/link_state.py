"""What ``on_connection_change`` hears, and what becomes of queued emits (``queued_emits``).

The transport says whether every subscription is confirmed; the publisher says how the
queued messages went, which nobody awaits. The application hears ``subscribed and
sending``: False once the subscriptions are lost or a queued message failed, True once
both work again (a queued message accepted while subscribed), so the callback means "the
link to Redis works both ways". Failed queued messages are counted; the log gets one
warning per burst of failures (at most one every ``LOG_EVERY`` seconds, with the count)
and a line when publishing works again. What could not be published before the adapter
closed is counted and logged once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .._health import ConnectionCallback, notify

if TYPE_CHECKING:
    from .._protocol.wire import Outgoing
    from .._transport.base import Report, Transport

LOG_EVERY = 10.0  # seconds: at most one warning (and one recovery line) this often


class LinkState:
    """One engine's view of its link, for ``on_connection_change``, stats and the log."""

    def __init__(
        self,
        callback: ConnectionCallback | None,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        logger: logging.Logger,
    ) -> None:
        self._callback = callback
        self._spawn = spawn
        self._logger = logger
        self.subscribed: bool | None = None  # None until the transport spoke
        self.sending = True  # False from a failed queued message to the next accepted one
        self._announced: bool | None = None
        self.failures = 0  # queued messages Redis did not accept
        self.dropped = 0  # queued messages not published before the adapter closed
        self.closing = False
        self._outage = 0  # failures since publishing last worked
        self._unlogged = 0  # failures since the last warning
        self._warned_at = self._recovered_at = -math.inf
        self.report: Report = self._report  # one bound method: publishers group by it

    async def queue(self, transport: Transport, out: Outgoing) -> bytes | None:
        """``ClusterEngine.send(out, queued=True)`` with the ``queued_emits`` option (the
        caller needs no reply): queue ``out`` (a publish or an append) and return without
        waiting for Redis; None, as no entry id is known yet."""
        if out.fields is None:
            await transport.publish_queued(out.target, out.payload, self.report)
        else:
            transport.check_size(out.payload)
            await transport.append_queued(out.target, out.fields, out.max_len, self.report)
        return None

    def subscription_changed(self, subscribed: bool) -> None:
        """The transport's ``on_change``."""
        self.subscribed = subscribed
        self._announce()

    def stats(self) -> dict[str, int]:
        return {"queued_publish_failures": self.failures, "queued_dropped_at_close": self.dropped}

    async def close(self, transport: Transport) -> None:
        """Close ``transport`` (it sends what is queued, bounded); count and log what it
        dropped instead."""
        self.closing = True
        await transport.aclose()
        if self.dropped:
            self._logger.warning(
                "%d queued broadcasts were dropped when the adapter closed: Redis did not "
                "accept them within publish_timeout (stats()['queued_dropped_at_close'])",
                self.dropped,
            )

    def _report(self, count: int, error: BaseException | None) -> None:
        if error is None:
            if not self.sending:
                self.sending = True
                self._recovered()
                self._announce()
            return
        if self.closing:
            self.dropped += count
            return
        self.failures += count
        self._outage += count
        self._unlogged += count
        now = time.monotonic()
        if now - self._warned_at >= LOG_EVERY:
            self._warned_at = now
            self._logger.warning(
                "%d queued broadcasts could not be published to Redis (%s); emits go on, "
                "failures are counted in stats()['queued_publish_failures'] and logged at "
                "most every %g s",
                self._unlogged,
                error,
                LOG_EVERY,
            )
            self._unlogged = 0
        if self.sending:
            self.sending = False
            self._announce()

    def _recovered(self) -> None:
        now = time.monotonic()
        if now - self._recovered_at >= LOG_EVERY:
            self._recovered_at = now
            self._logger.info(
                "queued broadcasts are published to Redis again (%d failed meanwhile)",
                self._outage,
            )
        self._outage = self._unlogged = 0

    def _announce(self) -> None:
        if self.subscribed is None:
            return
        up = self.subscribed and self.sending
        if up is not self._announced:
            self._announced = up
            if self._callback is not None:
                self._spawn(notify(self._callback, up))
