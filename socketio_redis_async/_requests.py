"""Requests this server sent to the others, waiting for their answers, by request id.

An entry lives only while its requester awaits it: it is removed on success, timeout,
cancellation and close, so the map never grows.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _codec as codec
from ._acks import new_request_id
from ._errors import MalformedMessage

ZLIB = "zlib"
"""Request field by which a Python requester accepts zlib-compressed answers (Node
requesters never send it, so they always get plain answers)."""
COMPRESS_FROM = 64 * 1024
"""Answers smaller than this (in JSON bytes) are sent plain."""


def compress_answer(answer: dict[str, Any], payload: bytes) -> bytes:
    """``payload`` (the JSON answer) as msgpack ``{requestId, uid, type?, zlib: <bytes>}``."""
    head = {key: answer[key] for key in ("type", "requestId", "uid") if key in answer}
    return codec.pack({**head, ZLIB: zlib.compress(payload, 1)})


def expand_answer(response: dict[str, Any], limit: int) -> dict[str, Any]:
    """The answer a compressed one carries, at most ``limit`` bytes of JSON once expanded."""
    data = response[ZLIB]
    try:
        inflater = zlib.decompressobj()
        payload = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise MalformedMessage(f"invalid compressed answer: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise MalformedMessage(f"compressed answer over {limit} bytes once expanded")
    return codec.decode_request(payload)


Extract = Callable[[dict[str, Any]], Any]
"""Turns one answer into the value to collect; raises KeyError/TypeError if unusable."""


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
    """The requests this server is waiting on."""

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
