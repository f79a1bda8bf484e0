"""Redis refusing the subscriber: a wrong password, or an ACL without a needed permission.

``record`` tells such a refusal from other failures (with the transport's ``explain``),
keeps it as ``denied`` until the subscriber clears it (every subscription confirmed
again), and wakes whoever waits for the next refusal; ``log`` reports it in one line, no
traceback, at most once a minute while it stays the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .._errors import AccessDeniedError

DENIAL_LOG_INTERVAL = 60.0


class Refusals:
    """The refusal in force (``denied``), and the futures waiting for the next one."""

    def __init__(
        self,
        explain: Callable[[BaseException], AccessDeniedError | None],
        logger: logging.Logger,
    ) -> None:
        self._explain = explain
        self._logger = logger
        self.denied: AccessDeniedError | None = None  # Redis refused us since the last confirm
        self._waiters: set[asyncio.Future[AccessDeniedError]] = set()
        self._logged = ("", -DENIAL_LOG_INTERVAL)

    def next(self) -> asyncio.Future[AccessDeniedError]:
        """A future resolved when Redis next refuses us (discard with ``forget``)."""
        fut: asyncio.Future[AccessDeniedError] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        return fut

    def forget(self, fut: asyncio.Future[AccessDeniedError]) -> None:
        """Stop tracking a future from :meth:`next`."""
        self._waiters.discard(fut)
        fut.cancel()

    def record(self, exc: BaseException) -> AccessDeniedError | None:
        """If ``exc`` is an authentication or ACL refusal, record it and tell who waits."""
        denied = self._explain(exc)
        if denied is not None:
            self.denied = denied
            for fut in self._waiters:
                if not fut.done():
                    fut.set_result(denied)
        return denied

    def log(self, denied: AccessDeniedError, failures: int) -> None:
        """Log a refusal: one line, no traceback; the same refusal at most once a minute."""
        now = asyncio.get_running_loop().time()
        last_text, last_time = self._logged
        if str(denied) != last_text or now - last_time >= DENIAL_LOG_INTERVAL:
            self._logged = (str(denied), now)
            self._logger.error(
                "%s; cross-server messages are NOT delivered until this is fixed; "
                "retrying (attempt %d; this error is logged at most once a minute)",
                denied,
                failures,
            )
