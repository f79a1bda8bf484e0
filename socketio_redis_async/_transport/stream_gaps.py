"""Gap accounting for stream readers: which entries Redis no longer holds that this server
never handled. Pure bookkeeping over ``XINFO STREAM`` replies, no I/O.

Per stream it keeps how many entries had ever been added up to the reader's offset (from
``entries-added``, Redis 7+), when that is known. Two ways to lose entries:

* **Trimmed** (``MAXLEN``) before they were read: a check made right before a read, at
  the reader's offset, finds the oldest entry Redis still holds past it. Redis 7 says how
  many (``entries-added - length`` against the count at the offset); Redis 6 only that
  there is a gap (the first entry is newer than the offset).
* **Lost by Redis** (restarted without its data, or failed over to a replica that was
  behind): only after a reconnect, when the entry at the offset is gone and trimming
  does not explain it. How many unread entries went with it cannot be known.

The count at the offset is re-anchored whenever the reader has caught up with the stream
(its offset is the stream's last id), so it never drifts after a loss.
"""

from __future__ import annotations

import logging
from typing import Any

FIRST = b"0-0"


def newer(a: bytes, b: bytes) -> bool:
    """Whether stream id ``a`` comes after ``b``."""
    ams, _, aseq = a.partition(b"-")
    bms, _, bseq = b.partition(b"-")
    return (int(ams), int(aseq or 0)) > (int(bms), int(bseq or 0))


class GapLedger:
    """What each stream's reader handled, and the gaps found in it."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._added: dict[bytes, int | None] = {}
        self.gaps = 0
        self.entries_lost = 0

    def start(self, stream: bytes, info: dict[bytes, Any] | None, replay: bool) -> None:
        """The reader starts at the stream's end (``info`` None: no stream yet), or at its
        oldest entry for a replay."""
        added = _int(info, b"entries-added")
        if info is None:
            added = 0
        elif added is not None and replay:
            added -= _int(info, b"length") or 0
        self._added[stream] = added

    def handled(self, stream: bytes) -> None:
        """One more entry of ``stream`` read."""
        added = self._added[stream]
        if added is not None:
            self._added[stream] = added + 1

    def check(
        self, stream: bytes, offset: bytes, info: dict[bytes, Any] | None, held: bool | None
    ) -> None:
        """Compare what Redis holds (``info``, read right before a read from ``offset``)
        with what was handled. ``held``: whether the entry at ``offset`` still exists,
        asked after a reconnect only (None: no reconnect since, so nothing was lost by
        Redis, only trimmed)."""
        known = self._added[stream]
        added = _int(info, b"entries-added")
        oldest = None if added is None or info is None else added - (_int(info, b"length") or 0)
        first = info.get(b"first-entry") if info else None
        lost_by_redis = held is False and offset != FIRST
        if lost_by_redis and info is not None and known is not None and oldest is not None:
            lost_by_redis = oldest < known  # the entry at the offset was not simply trimmed
        elif lost_by_redis and info is not None and known is None and first:
            lost_by_redis = not newer(first[0], offset)
        if lost_by_redis:
            self._report(
                stream,
                None,
                f"Redis no longer holds entry {offset.decode()} of stream "
                f"{stream.decode(errors='replace')!r}, the last this server read (it "
                "restarted without its data, or failed over to a replica that was behind): "
                "entries added after it that this server had not read are LOST, if there "
                f"were any; {self.gaps + 1} gaps so far",
            )
            known = self._added[stream] = None
        elif known is not None and oldest is not None:
            if oldest > known:
                self._report(stream, oldest - known, self._trimmed(stream, oldest - known))
                known = self._added[stream] = oldest
        elif first and offset != FIRST and newer(first[0], offset):
            self._report(stream, None, self._trimmed(stream, None))
            if oldest is not None:
                known = self._added[stream] = oldest
        if info is not None and added is not None and info.get(b"last-generated-id") == offset:
            self._added[stream] = added  # caught up: the count at the offset is exact again

    def _trimmed(self, stream: bytes, count: int | None) -> str:
        return (
            f"{'some' if count is None else count} entries of stream "
            f"{stream.decode(errors='replace')!r} were trimmed before this server read "
            "them: broadcasts from other servers were LOST (raise max_len, or make this "
            f"server keep up); {self.gaps + 1} gaps so far"
        )

    def _report(self, stream: bytes, count: int | None, text: str) -> None:
        self.gaps += 1
        self.entries_lost += count or 0
        self._logger.error("%s", text)


def _int(info: dict[bytes, Any] | None, field: bytes) -> int | None:
    value = info.get(field) if info else None
    return None if value is None else int(value)
