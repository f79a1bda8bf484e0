"""``socketio-redis``: inspect and drive a live cluster from a shell.

Queries (``servers``, ``rooms``, ``sockets``) are answered by the live servers through the
request protocol, classic or (``--sharded``) sharded, on a standalone Redis or a Redis
Cluster, whose nodes are all counted (see ``bus``); the tool is never counted as a
server. Errors print one line on stderr and exit non-zero: 1 for Redis
problems and timeouts, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis

from .._emitter import Emitter
from .._errors import RedisAdapterError
from .._operator import check_namespace
from .._options import DEFAULT_KEY, DEFAULT_URL, check_url, redact_url
from .._protocol import messages, sharded
from .common import CliError, make_bus, out
from .monitor import monitor


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("SOCKETIO_REDIS_URL", DEFAULT_URL),
        help="Redis URL (default $SOCKETIO_REDIS_URL or %(default)s)",
    )
    common.add_argument("--key", default=DEFAULT_KEY, help="channel prefix (default %(default)s)")
    common.add_argument("--namespace", "-n", default="/", help="namespace (default /)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for answers")
    common.add_argument(
        "--sharded",
        action="store_true",
        help="the servers use the sharded protocol (AsyncShardedRedisAdapter, SPUBLISH)",
    )
    common.add_argument(
        "--subscription-mode",
        default="dynamic",
        choices=sharded.MODES,
        help="with --sharded: the servers' subscription mode (default %(default)s)",
    )
    common.add_argument(
        "--streams",
        action="store_true",
        help="the servers use the streams protocol (AsyncStreamsRedisAdapter, XADD)",
    )
    common.add_argument(
        "--stream-name", default="socket.io", help="with --streams: the servers' stream_name"
    )
    common.add_argument(
        "--stream-count", type=int, default=1, help="with --streams: the servers' stream_count"
    )
    common.add_argument(
        "--sharded-pub-sub",
        action="store_true",
        help="with --streams: the servers' use_sharded_pub_sub=True",
    )
    parser = argparse.ArgumentParser(prog="socketio-redis", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "demo", help="run a demo cluster: embedded Redis, two servers, four clients"
    )
    emit = commands.add_parser("emit", parents=[common], help="emit an event to clients")
    emit.add_argument("event")
    emit.add_argument("args", nargs="*", metavar="JSON_ARG", help="arguments, each a JSON value")
    emit.add_argument("--to", action="append", default=[], metavar="ROOM")
    emit.add_argument("--except", dest="except_", action="append", default=[], metavar="ROOM")
    commands.add_parser("servers", parents=[common], help="count the servers and list their uids")
    commands.add_parser("rooms", parents=[common], help="list rooms with their member counts")
    sockets = commands.add_parser("sockets", parents=[common], help="list sockets")
    sockets.add_argument("--room", action="append", default=[], help="only sockets in ROOM")
    monitor = commands.add_parser("monitor", parents=[common], help="print cluster traffic")
    monitor.add_argument("--count", type=int, default=0, help="stop after N messages")
    monitor.add_argument(
        "--from",
        dest="from_",
        metavar="OFFSET",
        help="with --streams: first show the entries after OFFSET (0: all the streams hold)",
    )
    return parser


def _cmd_emit(args: argparse.Namespace) -> int:
    values = []
    for i, raw in enumerate(args.args, 1):
        try:
            values.append(json.loads(raw))
        except ValueError as exc:
            raise CliError(f"argument {i} ({raw!r}) is not valid JSON: {exc}", 2) from None
    with Emitter(
        args.url,
        key=args.key,
        namespace=args.namespace,
        publish_timeout=args.timeout,
        sharded=args.sharded,
        subscription_mode=args.subscription_mode,
        streams=args.streams,
        stream_name=args.stream_name,
        stream_count=args.stream_count,
    ) as emitter:
        receivers = emitter.to(args.to).except_(args.except_).emit(args.event, *values)
    target = f"rooms {', '.join(args.to)}" if args.to else f"namespace {emitter.namespace}"
    out(
        args,
        f"emitted {args.event!r} to {target}: {receivers} server(s) received it",
        {"event": args.event, "receivers": receivers},
    )
    return 0


async def _ask(
    args: argparse.Namespace, build: Callable[[str], dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """Publish ``build(request_id)`` and collect the answers of every server."""
    bus = make_bus(args)
    try:
        await bus.start([bus.answers])
        expected = await bus.count_servers()
        request_id, entry = bus.pending.open(expected, lambda answer: answer)
        await bus.publish_request(build(request_id))
        if expected:
            await asyncio.wait([entry.done], timeout=args.timeout)
        if expected and not entry.done.done():
            raise CliError(
                f"timeout: only {len(entry.responses)} of {expected} servers answered "
                f"within {args.timeout:g} s"
            )
        return list(entry.responses), expected
    finally:
        await bus.aclose()


async def _servers(args: argparse.Namespace) -> int:
    bus = make_bus(args)
    try:
        await bus.start([bus.answers])
        count, uids = await bus.count_servers(), await bus.server_uids()
    finally:
        await bus.aclose()
    lines = [f"{count} server(s) on namespace {args.namespace} (key {args.key})"]
    lines += [f"  {uid}" for uid in uids]
    out(args, "\n".join(lines), {"count": count, "uids": uids})
    return 0


def _sockets_of(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for a in answers for s in a.get("sockets") or () if isinstance(s, dict)]


async def _rooms(args: argparse.Namespace) -> int:
    answers, _ = await _ask(args, lambda rid: messages.fetch_request(None, rid, [], []))
    sockets = _sockets_of(answers)
    ids = {s.get("id") for s in sockets}
    counts = Counter(room for s in sockets for room in s.get("rooms") or () if room not in ids)
    lines = [f"{len(counts)} room(s), {len(sockets)} socket(s)"]
    lines += [f"  {room!s:<30} {n} member(s)" for room, n in sorted(counts.items(), key=str)]
    out(
        args,
        "\n".join(lines),
        {"rooms": {str(r): n for r, n in counts.items()}, "sockets": len(sockets)},
    )
    return 0


async def _sockets(args: argparse.Namespace) -> int:
    answers, _ = await _ask(args, lambda rid: messages.fetch_request(None, rid, args.room, []))
    sockets = _sockets_of(answers)
    lines = [f"{len(sockets)} socket(s)"]
    for s in sockets:
        address = (s.get("handshake") or {}).get("address", "")
        rooms = ",".join(str(r) for r in s.get("rooms") or () if r != s.get("id"))
        lines.append(f"  {s.get('id')}  rooms={rooms or '-'}  address={address}")
    out(
        args,
        "\n".join(lines),
        [
            {
                "id": s.get("id"),
                "rooms": s.get("rooms"),
                "address": (s.get("handshake") or {}).get("address"),
            }
            for s in sockets
        ],
    )
    return 0


_ASYNC = {"servers": _servers, "rooms": _rooms, "sockets": _sockets, "monitor": monitor}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo()
    try:
        check_url(args.url)
        args.namespace = check_namespace(args.namespace)
        if args.command == "emit":
            return _cmd_emit(args)
        return asyncio.run(_ASYNC[args.command](args))
    except KeyboardInterrupt:
        return 0
    except CliError as exc:
        message, code = str(exc), exc.code
    except (ValueError, TypeError) as exc:
        message, code = str(exc), 2
    except RedisAdapterError as exc:  # RedisCommandError, PublishError: the URL is in it
        message, code = str(exc), 1
    except (redis.RedisError, OSError) as exc:
        message, code = f"Redis at {redact_url(args.url)}: {exc}", 1
    print(f"socketio-redis: error: {message}", file=sys.stderr)
    return code
