"""What a recovering client missed: the stream entries after its offset, read in bounded
pages, kept if they were for the socket (``sessions.replays_to``), and cut where this
server's own handling of the stream stands when the socket is registered, so that each
packet arrives once: replayed if it was handled before, live if after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._errors import MalformedMessage
from .._protocol import sharded, streams
from .._protocol.messages import Broadcast
from .sessions import RecoveryFailed, Restore, Session, offset_key, replays_to, with_offset
from .store import SessionStore

PAGE = 500
"""Entries per XRANGE while reading what a client missed."""

Decode = Callable[[list[bytes]], tuple[str, Any]]
"""A stream entry's fields -> (the sender's uid, the broadcast it carries, if any)."""


class Replay:
    """Reads and cuts replays for one server."""

    def __init__(
        self,
        store: SessionStore,
        decode: Decode,
        position: Callable[[str], bytes | None],
        max_entries: int,
    ) -> None:
        self._store = store
        self._decode = decode
        self._position = position
        self._max_entries = max_entries

    async def start(self, session: Session, nsp: str, stream: str) -> Restore:
        """Check that the session's offset is still in ``stream`` and read what follows."""
        start = session.offset
        if start is None:
            raise RecoveryFailed("no_offset")
        if start == "0-0":  # stored when the stream was empty: all of it, if it is all there
            if await self._store.ever_trimmed(stream):
                raise RecoveryFailed("offset_not_found")
        elif not await self._store.entries(stream, start, start, 1):
            raise RecoveryFailed("offset_not_found")  # trimmed, or Redis lost it
        restore = Restore(session, nsp, stream, start)
        await self.read(restore)
        return restore

    async def read(self, restore: Restore) -> None:
        """Read on from ``restore.cursor`` until this server's handling of the stream."""
        stream, rooms = restore.stream, set(restore.session.rooms)
        while True:
            page = await self._store.entries(stream, "(" + restore.cursor, "+", PAGE)
            restore.scanned += len(page)
            if restore.scanned > self._max_entries:
                raise RecoveryFailed("too_many_entries")
            for entry_id, fields in page:
                try:
                    uid, msg = self._decode(fields)
                except MalformedMessage:
                    continue
                if msg is not None and replays_to(msg, restore.nsp, rooms):
                    restore.entries.append((entry_id, uid, msg))
            if page:
                restore.cursor = page[-1][0].decode()
            handled = self._position(stream)
            behind = handled is not None and offset_key(handled) > offset_key(restore.cursor)
            if not page or (len(page) < PAGE and not behind):
                return

    def missed(self, restore: Restore, uid: str, mine: bytes | None) -> list[list[Any]]:
        """The packets to replay, with their offsets. Call it right after registering the
        socket, without awaiting in between: entries handled after that come live. ``mine``
        is the last of this server's (``uid``) own entries it delivered locally."""
        handled = self._position(restore.stream)
        handled_key = offset_key(handled) if handled is not None else (-1, -1)
        mine_key = offset_key(mine) if mine is not None else (-1, -1)
        return [
            with_offset(msg.data, entry_id)
            for entry_id, sender, msg in restore.entries
            if offset_key(entry_id) <= (mine_key if sender == uid else handled_key)
        ]


def replayable(fields: list[bytes]) -> tuple[str, Broadcast | None]:
    """A stream entry read back for a replay: its sender, and its broadcast if it is one."""
    msg = streams.decode_entry(fields)
    return msg.uid, sharded.as_broadcast(msg)
