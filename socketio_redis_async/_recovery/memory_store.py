"""``SessionStore`` in one process: sessions in a dict with expiry times, entries read
from a ``MemoryHub``'s streams (the in-memory transport's "Redis")."""

from __future__ import annotations

import time

from .._transport.memory import MemoryHub
from .sessions import offset_key
from .store import Entry


class MemorySessionStore:
    """Sessions and stream ranges for every engine on one ``MemoryHub``."""

    def __init__(self, hub: MemoryHub) -> None:
        self._hub = hub
        self.sessions: dict[str, tuple[bytes, float]] = {}  # key -> (value, expires at)

    def _get(self, key: str) -> bytes | None:
        value, expires = self.sessions.get(key, (None, 0.0))
        if value is not None and expires <= time.monotonic():
            del self.sessions[key]
            return None
        return value

    async def put(self, key: str, value: bytes, ttl_ms: int, previous: bytes | None) -> None:
        current = self._get(key)
        if previous is None or current is None or current == previous:
            self.sessions[key] = (value, time.monotonic() + ttl_ms / 1000)

    async def drop(self, key: str, previous: bytes) -> None:
        if self._get(key) == previous:
            del self.sessions[key]

    async def get(self, key: str) -> bytes | None:
        return self._get(key)

    async def entries(self, stream: str, start: str, end: str, count: int) -> list[Entry]:
        exclusive = start.startswith("(")
        low = offset_key(start.lstrip("("))
        high = None if end == "+" else offset_key(end)
        found: list[Entry] = []
        for _, entry_id, fields in self._hub.streams.get(stream, []):
            key = offset_key(entry_id)
            if key < low or (exclusive and key == low) or (high is not None and key > high):
                continue
            found.append((entry_id, list(fields)))
            if len(found) == count:
                break
        return found

    async def ever_trimmed(self, stream: str) -> bool:
        entries = self._hub.streams.get(stream, [])
        return bool(entries) and entries[0][0] > 0
