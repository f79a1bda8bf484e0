"""The stream readers' gap accounting, on hand-made XINFO STREAM replies (Redis 7 and 6)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from socketio_redis_async._transport.stream_gaps import FIRST, GapLedger, newer

pytestmark = pytest.mark.unit
S = b"s"


def info(added: int | None, length: int, first: bytes | None, last: bytes) -> dict[bytes, Any]:
    """An XINFO STREAM reply as a map (``added`` None: Redis 6, which has no count)."""
    reply: dict[bytes, Any] = {
        b"length": length,
        b"last-generated-id": last,
        b"first-entry": [first, []] if first else None,
    }
    if added is not None:
        reply[b"entries-added"] = added
    return reply


def ledger_at(added: int | None) -> GapLedger:
    """A ledger whose reader started at the end of a stream with ``added`` entries."""
    ledger = GapLedger(logging.getLogger("test"))
    ledger.start(S, info(added, 5, b"1-0", b"5-0"), replay=False)
    return ledger


def test_ids_compare_by_time_then_sequence():
    """Stream ids order by milliseconds, then sequence."""
    assert newer(b"2-0", b"1-9") and newer(b"1-10", b"1-9") and not newer(b"1-1", b"1-1")


def test_no_gap_while_the_oldest_entry_is_not_past_the_offset():
    """Read up to entry 7 of 7, Redis holds 3..: nothing lost."""
    ledger = ledger_at(5)
    ledger.handled(S)
    ledger.handled(S)
    ledger.check(S, b"7-0", info(9, 6, b"3-0", b"9-0"), None)
    assert (ledger.gaps, ledger.entries_lost) == (0, 0)


def test_a_trim_past_the_offset_counts_what_was_never_read():
    """Read 5 entries; 100 added since, Redis keeps the last 10: 90 lost, counted once."""
    ledger = ledger_at(5)
    ledger.check(S, b"5-0", info(105, 10, b"96-0", b"105-0"), None)
    assert (ledger.gaps, ledger.entries_lost) == (1, 90)
    for _ in range(10):
        ledger.handled(S)
    ledger.check(S, b"105-0", info(105, 10, b"96-0", b"105-0"), None)
    assert (ledger.gaps, ledger.entries_lost) == (1, 90)


def test_redis_6_reports_a_trim_without_a_count():
    """Without entries-added, a first entry newer than the offset is a gap of unknown size."""
    ledger = ledger_at(None)
    ledger.check(S, b"5-0", info(None, 10, b"96-0", b"105-0"), None)
    assert (ledger.gaps, ledger.entries_lost) == (1, 0)


def test_a_stream_that_did_not_exist_counts_from_zero():
    """A reader that started before the stream existed counts every entry ever added."""
    ledger = GapLedger(logging.getLogger("test"))
    ledger.start(S, None, replay=False)
    ledger.check(S, FIRST, info(50, 10, b"41-0", b"50-0"), None)
    assert (ledger.gaps, ledger.entries_lost) == (1, 40)


@pytest.mark.parametrize("added_since", [3, 50])
def test_an_offset_entry_gone_without_a_trim_is_a_loss_by_redis(added_since):
    """After a reconnect, the entry at the offset is gone and trimming cannot explain it
    (Redis restarted empty; then ``added_since`` new entries): one gap, size unknown."""
    ledger = ledger_at(30)
    new = info(added_since, added_since, b"900-0", b"%d-0" % (899 + added_since))
    ledger.check(S, b"30-0", new, held=False)
    assert (ledger.gaps, ledger.entries_lost) == (1, 0)
    for _ in range(added_since):  # read the new stream, then a reconnect with nothing lost
        ledger.handled(S)
    last = b"%d-0" % (899 + added_since)
    ledger.check(S, last, new, None)
    ledger.check(S, last, new, held=True)
    assert ledger.gaps == 1


def test_a_stream_gone_after_a_reconnect_is_a_loss_by_redis():
    """The stream no longer exists after a reconnect: lost by Redis."""
    ledger = ledger_at(30)
    ledger.check(S, b"30-0", None, held=False)
    assert ledger.gaps == 1


def test_a_trim_past_the_offset_seen_after_a_reconnect_is_a_trim():
    """After a reconnect the offset entry is gone because it was trimmed: counted as such."""
    ledger = ledger_at(30)
    ledger.check(S, b"30-0", info(200, 10, b"191-0", b"200-0"), held=False)
    assert (ledger.gaps, ledger.entries_lost) == (1, 160)


def test_a_replay_counts_from_the_oldest_entry():
    """A replay from 0 starts counting at the oldest entry Redis holds: no gap."""
    ledger = GapLedger(logging.getLogger("test"))
    ledger.start(S, info(100, 10, b"91-0", b"100-0"), replay=True)
    ledger.check(S, FIRST, info(100, 10, b"91-0", b"100-0"), None)
    assert ledger.gaps == 0
