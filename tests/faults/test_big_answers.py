"""Answers to other servers' requests: their own size limit, and an explicit error above it."""

from __future__ import annotations

import asyncio
import logging
import secrets
import zlib
from typing import Any

import anyio
import pytest

from socketio_redis_async import AnswerTooLargeError
from socketio_redis_async._errors import MalformedMessage
from socketio_redis_async._protocol import codec
from socketio_redis_async._protocol.answers import compress as compress_answer
from socketio_redis_async._protocol.answers import expand as expand_answer
from tests.helpers import Node

pytestmark = pytest.mark.anyio

BIG = 50_000


def browser_environ(i: int) -> dict[str, Any]:
    """The environ of a websocket connection from a desktop browser (no cookie)."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/socket.io/",
        "QUERY_STRING": f"EIO=4&transport=websocket&t=P{i:07d}",
        "REMOTE_ADDR": f"10.0.{i // 250 % 250}.{i % 250}",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "chat.example.com",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "HTTP_ORIGIN": "https://chat.example.com",
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
        "HTTP_SEC_WEBSOCKET_VERSION": "13",
        "HTTP_SEC_WEBSOCKET_KEY": f"dGhlIHNhbXBsZSBub25jZQ{i:06d}",
    }


async def add_sockets(
    node: Node, count: int, environ: Any = browser_environ, namespace: str = "/"
) -> list[str]:
    """``count`` local sockets on ``node``, registered through its manager as a connect would,
    each with ``environ(i)`` as its WSGI environ."""
    manager = node.adapter
    sids: list[str] = []
    for first in range(0, count, 1000):
        eio_sids = [f"eio{i}" for i in range(first, min(count, first + 1000))]
        for i, eio_sid in enumerate(eio_sids, first):
            node.sio.environ[eio_sid] = environ(i)
        got = await asyncio.gather(*(manager.pre_connect(e, namespace) for e in eio_sids))
        for sid in got:
            assert sid is not None
            await manager.connect(sid, namespace)
            sids.append(sid)
    return sids


async def test_answers_may_exceed_max_message_size(make_node):
    """An answer larger than max_message_size but within max_answer_size arrives intact."""
    a = await make_node(max_message_size=4096)
    b = await make_node(max_message_size=4096)
    sids = await add_sockets(b, 100)
    with anyio.fail_after(1.5):  # less than requests_timeout: an answer, not a timeout
        found = await a.adapter.fetch_sockets()
    assert sorted(s.id for s in found) == sorted(sids)
    assert all(s.handshake["headers"]["host"] == "chat.example.com" for s in found)


async def test_too_large_answer_is_an_explicit_error(make_node, caplog):
    """Above max_answer_size the answering server sends an error, logged without traceback,
    and the requester raises AnswerTooLargeError naming it instead of timing out."""
    a = await make_node(max_message_size=1024, max_answer_size=10_000)
    b = await make_node(max_message_size=1024, max_answer_size=10_000)
    for sid in await add_sockets(b, 100):  # incompressible: compression cannot save it
        b.adapter.set_socket_data(sid, secrets.token_hex(200))
    caplog.set_level(logging.WARNING, logger="socketio_redis_async")
    with anyio.fail_after(1.5), pytest.raises(AnswerTooLargeError) as info:
        await a.adapter.fetch_sockets()
    assert info.value.servers == [b.adapter.uid]
    assert str(info.value).startswith("answer too large: ")
    assert "max_answer_size=10000" in str(info.value)
    b.adapter.on("big", lambda: secrets.token_hex(20_000))
    with anyio.fail_after(1.5), pytest.raises(AnswerTooLargeError):
        await a.adapter.server_side_emit_with_ack("big")
    lines = [r for r in caplog.records if "answer too large" in r.getMessage()]
    assert len(lines) == 2 and all(r.exc_info is None for r in lines)
    assert a.adapter.stats["pending_requests"] == 0


async def test_fifty_thousand_sockets_in_one_answer(make_node, make_client, reliability):
    """fetch_sockets() gets a 50,000-socket answer from another server intact, with the
    default limits and the handshake of a real python-socketio client."""
    a = await make_node(requests_timeout=30)
    # Without per-room channels, 50k sockets are registered faster; answers are the same.
    b = await make_node(requests_timeout=30, with_channel_multiplexing=False)
    real = await make_client(b)
    template = dict(b.sio.environ[b.sio.manager.eio_sid_from_sid(real.sid(), "/")])
    await real.aclose()

    sids = await add_sockets(b, BIG, lambda i: template)
    everyone = list(b.adapter.rooms["/"][None].items())
    answer = {"requestId": "x" * 12, "sockets": b.adapter._engine.local.describe("/", everyone)}
    size = len(codec.dump_json(answer))
    sent = len(compress_answer(answer, codec.dump_json(answer)))
    started = asyncio.get_running_loop().time()
    found = await a.adapter.fetch_sockets()
    took = asyncio.get_running_loop().time() - started
    assert sorted(s.id for s in found) == sorted(sids)
    one = {s.id: s for s in found}[sids[-1]]
    assert one.handshake["headers"]["user-agent"] == template["HTTP_USER_AGENT"]
    assert one.rooms == {sids[-1]}
    browser = await browser_bytes_per_socket(b)
    reliability.record(
        "answers.fetch_50k_bytes",
        round(size / 2**20, 1),
        "MiB",
        f"one server's fetch_sockets answer for {BIG:,} python-socketio clients "
        f"({size // BIG} bytes per socket; {browser} with a desktop browser's headers)",
        "max_answer_size 30 MiB (default); larger answers raise AnswerTooLargeError",
    )
    reliability.record(
        "answers.fetch_50k_sent",
        round(sent / 2**20, 2),
        "MiB",
        "the same answer as published to a Python requester (zlib)",
        "max_answer_size 30 MiB (default)",
    )
    reliability.record(
        "answers.fetch_50k_seconds",
        round(took, 2),
        "s",
        f"fetch_sockets() across 2 servers with {BIG:,} sockets on the other one",
    )


async def browser_bytes_per_socket(node: Node) -> int:
    """Bytes per socket in a fetch_sockets answer when the clients are desktop browsers."""
    sids = await add_sockets(node, 100, browser_environ, namespace="/custom")
    recipients = list(node.adapter.rooms["/custom"][None].items())
    assert len(recipients) == len(sids)
    return len(codec.dump_json(node.adapter._engine.local.describe("/custom", recipients))) // 100


@pytest.mark.unit
def test_compressed_answers_are_bounded_when_expanded():
    """A compressed answer expands to what was sent; one that would expand past the bound,
    or is not zlib, is malformed (dropped and counted), never a memory blow-up."""
    answer = {"requestId": "r1", "uid": "u1", "sockets": ["x" * 100] * 1000}
    packed = codec.decode_request(compress_answer(answer, codec.dump_json(answer)))
    assert isinstance(packed["zlib"], bytes) and "sockets" not in packed
    assert expand_answer(packed, 10**6) == answer
    bomb = {"requestId": "r1", "zlib": zlib.compress(b"{" + b" " * 10**7 + b"}")}
    with pytest.raises(MalformedMessage, match="over 1000000 bytes"):
        expand_answer(bomb, 10**6)
    with pytest.raises(MalformedMessage, match="invalid compressed answer"):
        expand_answer({"requestId": "r1", "zlib": b"not zlib"}, 10**6)
