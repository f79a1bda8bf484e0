"""The subscriber's pause between reconnects, and the error lines it logs meanwhile.

The pause is a jittered exponential backoff: 0.1-0.2 s after the first failure, capped
at 1 s while Redis stays down. The first three failures in a row are logged, then at
most one line every 30 s. Every server retries at least once per ``BACKOFF_CAP``, so
``BACKOFF_CAP + GRACE`` after a reconnect, the others are subscribed again too.
"""

from __future__ import annotations

import asyncio
import logging
import random

from .commands import describe

BACKOFF_BASE = 0.1
BACKOFF_CAP = 1.0
GRACE = 0.2  # what a reconnect and a SUBSCRIBE take, added to the backoff cap
LOG_EVERY = 30.0  # while Redis stays down, repeat the error at most this often (seconds)


def backoff_delay(failures: int) -> float:
    """The pause after ``failures`` failures in a row, jittered so servers spread out."""
    delay: float = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures, 16))
    delay *= random.uniform(0.5, 1.0)
    return delay


class OutageLog:
    """Logs the failures of one link to Redis: one line each, no traceback, rate-limited."""

    def __init__(
        self,
        logger: logging.Logger,
        where: str,
        consequence: str = "cross-server messages are NOT delivered until it is back",
    ) -> None:
        self._logger = logger
        self._where = where
        self._consequence = consequence
        self._last_log = -1e9

    def failed(self, what: str, exc: BaseException, delay: float, failures: int) -> None:
        """Log the ``failures``-th failure in a row, retried in ``delay`` seconds."""
        now = asyncio.get_running_loop().time()
        if failures <= 3 or now - self._last_log >= LOG_EVERY:
            self._last_log = now
            self._logger.error(
                "%s Redis at %s (%s); %s; retrying in %.2f s (attempt %d)",
                what,
                self._where,
                describe(exc),
                self._consequence,
                delay,
                failures,
            )
