"""``socketio-redis monitor``: print the cluster's traffic as it passes, and with
``--streams`` the stream entries too (from ``--from OFFSET`` to replay what they hold)."""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from typing import Any

from .._options import redact_url
from .._protocol import streams, traffic
from .._protocol.streams_wire import StreamsWire
from .common import CliError, make_bus, out


def _show(args: argparse.Namespace, entry: dict[str, Any]) -> None:
    """Print one monitored message."""
    entry["time"] = (
        time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
    )
    fields = [entry["time"], entry["channel"], entry["kind"]]
    fields += [
        f"{k}={entry[k]}"
        for k in ("uid", "type", "event", "rooms", "except_", "args", "error")
        if entry.get(k) not in (None, [], "")
    ]
    out(args, "  ".join(str(f) for f in fields), entry)


async def monitor(args: argparse.Namespace) -> int:
    """Print each message on the channels the wire format names, until ``--count``."""
    seen, done = 0, asyncio.Event()
    if isinstance(sys.stdout, io.TextIOWrapper):  # show lone surrogates, never fail on them
        sys.stdout.reconfigure(errors="backslashreplace")

    def count(entry: dict[str, Any]) -> None:
        nonlocal seen
        if args.count and seen >= args.count:
            return
        seen += 1
        _show(args, entry)
        if args.count and seen >= args.count:
            done.set()

    async def show(channel: bytes, payload: bytes) -> None:
        count(bus.wire.describe(args.key, channel.decode(errors="replace"), payload))

    async def show_entry(stream: bytes, entry_id: bytes, fields: list[bytes]) -> None:
        count(traffic.describe_entry(stream.decode(errors="replace"), entry_id.decode(), fields))

    lost = False

    def link(subscribed: bool) -> None:
        """A monitor keeps going through a Redis outage, and says so on stderr."""
        nonlocal lost
        if not subscribed:
            lost = True
            text = "lost the link; reconnecting (messages published meanwhile are not shown)"
        elif lost:
            lost = False
            text = "the link is back"
        else:
            return
        print(
            f"socketio-redis: Redis at {redact_url(args.url)}: {text}", file=sys.stderr, flush=True
        )

    bus = make_bus(args, on_message=show, on_change=link)
    reading: asyncio.Future[list[None]] | None = None
    try:
        channels, patterns = bus.wire.monitor_subscriptions(args.key, args.namespace)
        await bus.start(channels, patterns)
        names = channels + patterns
        if isinstance(bus.wire, StreamsWire):
            start = args.from_
            if start not in (None, "0"):
                start = streams.check_offset(start)
            names += bus.wire.streams
            readers = await bus.stream_readers(show_entry, start)
            reading = asyncio.gather(*(reader.run() for reader in readers))
            try:
                for reader in readers:
                    await asyncio.wait_for(reader.ready.wait(), args.timeout)
            except TimeoutError:
                errors = {r.last_error for r in readers} - {None}
                raise CliError(f"cannot read the streams: {', '.join(map(str, errors))}") from None
        print(
            f"monitoring {redact_url(args.url)} key {args.key}: {', '.join(names)}"
            " (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        await done.wait()
    finally:
        if reading is not None:
            reading.cancel()
            await asyncio.wait([reading])  # gather: cancelled with its readers
        await bus.aclose()
    return 0
