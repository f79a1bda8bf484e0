"""Asking the whole cluster: request/response rounds and broadcast-with-ack collection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._commands import redis_call
from ._errors import AnswerTooLargeError, RequestTimeoutError
from ._requests import ZLIB, Extract

if TYPE_CHECKING:
    from ._core import AdapterCore


async def live_servers(adapter: AdapterCore, namespace: str) -> list[str]:
    """Uids of the servers listening on their own response channel (Python, Node >= 7.1)."""
    channels = adapter._channels_of(namespace)
    found = await redis_call(
        adapter.pub_client.pubsub_channels(channels.uid_pattern),
        what="PUBSUB CHANNELS failed",
        where=adapter._where,
        timeout=adapter.requests_timeout,
    )
    return channels.uids(found)


async def remember_live(adapter: AdapterCore, namespace: str) -> None:
    """Note the live servers of ``namespace`` at most once per ``requests_timeout``, so that
    a server that dies while a request waits for it can still be named as silent.

    PUBSUB CHANNELS scans every channel in Redis, so it is not sent for every request.
    """
    now = asyncio.get_running_loop().time()
    seen = adapter._live_seen.get(namespace)
    if seen is None or now - seen[0] >= adapter.requests_timeout:
        adapter._live_seen[namespace] = (now, await live_servers(adapter, namespace))


async def silent_servers(adapter: AdapterCore, namespace: str, answered: set[str]) -> list[str]:
    """Servers live now or when the request began that did not answer, this one aside."""
    live = set(await live_servers(adapter, namespace))
    live.update(adapter._live_seen.get(namespace, (0.0, []))[1])
    live.discard(adapter.uid)
    return sorted(live - answered)


async def gather(
    adapter: AdapterCore,
    namespace: str,
    request: dict[str, Any],
    extract: Extract,
    *,
    what: str | None,
    expected: int | None = None,
    timeout: float | None = None,
) -> list[Any]:
    """Publish ``request`` and collect one extracted value per answering server.

    ``expected`` defaults to the server count minus this server; with no other server
    there is no request at all. On timeout raise RequestTimeoutError: "timeout reached
    while waiting for <what> response", or Node's serverSideEmit text when ``what`` is
    None, with the partial answers and the silent servers. If some server answered that
    its answer was over its ``max_answer_size``, raise AnswerTooLargeError.
    """
    async with adapter._serving(namespace):
        return await _gather(adapter, namespace, request, extract, what, expected, timeout)


async def _gather(
    adapter: AdapterCore,
    namespace: str,
    request: dict[str, Any],
    extract: Extract,
    what: str | None,
    expected: int | None,
    timeout: float | None,
) -> list[Any]:
    if expected is None:
        expected = await adapter._numsub(namespace) - 1
    if expected <= 0:
        return []
    await remember_live(adapter, namespace)
    request_id, entry = adapter._pending.open(expected, extract)
    try:
        await adapter._request(
            namespace, {"uid": adapter.uid, "requestId": request_id, **request, ZLIB: True}
        )
        try:
            await asyncio.wait_for(asyncio.shield(entry.done), timeout or adapter.requests_timeout)
        except asyncio.TimeoutError:
            if what is None:
                message = (
                    f"timeout reached: only {len(entry.responses)} responses received "
                    f"out of {entry.expected}"
                )
            else:
                message = f"timeout reached while waiting for {what} response"
            silent = await silent_servers(adapter, namespace, entry.signers)
            raise RequestTimeoutError(
                message, list(entry.responses), silent, entry.unsigned
            ) from None
        if entry.errors:
            raise AnswerTooLargeError(
                "; ".join(error for _, error in entry.errors),
                list(entry.responses),
                [uid for uid, _ in entry.errors],
            )
        return list(entry.responses)
    finally:
        adapter._pending.close(request_id)


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
