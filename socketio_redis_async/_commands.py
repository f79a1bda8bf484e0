"""The one boundary every Redis command other than the publisher's PUBLISH goes through.

Each call gets a time bound, and every failure leaves it as this package's own
``RedisCommandError`` (or the subclass the caller asks for), with the redis-py or OS
error chained and the URL redacted; nothing from redis-py escapes to the application.
Cancelling a redis-py command drops its connection (redis-py disconnects on any error
while reading a reply), so a timed-out command never leaves a stray reply behind.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import anyio
from redis.exceptions import RedisError

from ._errors import RedisCommandError

T = TypeVar("T")


async def redis_call(
    call: Awaitable[T],
    *,
    what: str,
    where: str,
    timeout: float,
    error: type[RedisCommandError] = RedisCommandError,
) -> T:
    """Await ``call`` for at most ``timeout`` seconds; raise ``error`` on any Redis failure.

    ``what`` starts the message (``"PUBSUB NUMSUB failed"``); ``where`` is the redacted URL.
    """
    try:
        with anyio.fail_after(timeout):
            return await call
    except TimeoutError as exc:
        # anyio's bound expiring, or a socket timeout (both are TimeoutErrors).
        raise error(f"{what}: Redis at {where} did not answer within {timeout:g} s") from exc
    except (RedisError, OSError) as exc:
        raise error(f"{what}: Redis at {where}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
