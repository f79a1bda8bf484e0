"""Secrets stay hidden: Redis URL credentials, and the tokens in clients' handshakes.

Credentials in Redis URLs never show in exceptions, log lines, CLI output or ``.url``:
every form redis-py reads a credential from is tried against a real failure (a live
redis-server that refuses the credentials, or a port nothing listens on). Secret headers
and query parameters of clients never cross Redis in ``fetch_sockets`` answers.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio
import socketio

from socketio_redis_async import (
    AsyncEmitter,
    AsyncRedisAdapter,
    AsyncShardedRedisAdapter,
    Emitter,
    PublishError,
    RedisAdapterError,
)
from socketio_redis_async._cli.redis_server import RedisServer, free_port
from socketio_redis_async._options import check_url, redact_url
from socketio_redis_async._transport.clients import _ASYNC_SSL_PASSWORD
from tests.helpers import Client, run_cli

pytestmark = pytest.mark.anyio

SECRET = "Sup3rS3cret"

FORMS = {
    "user:password@": "redis://ann:{s}@127.0.0.1:{port}/0",
    ":password@": "redis://:{s}@127.0.0.1:{port}/0",
    "?password=": "redis://127.0.0.1:{port}/0?password={s}",
    "?username=&password=": "redis://127.0.0.1:{port}/0?username=ann&password={s}",
    "user@ with ?password=": "redis://ann@127.0.0.1:{port}/0?password={s}&db=0",
    "lone secret@": "redis://{s}@127.0.0.1:{port}/0",
    "percent-encoded": "redis://ann:{s}%40%2F%3F@127.0.0.1:{port}/0",
    "netloc and query": "redis://ann:{s}@127.0.0.1:{port}/0?password={s}2",
    "unix ?password=": "unix://{sock}?password={s}",
    "unix :password@": "unix://:{s}@{sock}",
    "unix user:password@ and ?db=": "unix://ann:{s}@{sock}?db=0",
    "rediss ?password=": "rediss://127.0.0.1:{dead}/0?password={s}&ssl_cert_reqs=none",
    "rediss ?ssl_password=": "rediss://ann:{s}@127.0.0.1:{dead}/0?ssl_password={s}",
    "redis down": "redis://ann:{s}@127.0.0.1:{dead}/0",
}


@pytest.fixture(scope="module")
def auth_redis() -> Iterator[RedisServer]:
    """A redis-server whose default user has another password, on TCP and a Unix socket."""
    folder = tempfile.mkdtemp(prefix="sra")  # short: a socket path is limited to 108 bytes
    with RedisServer(unixsocket=str(Path(folder) / "r.sock")) as server:
        with redis.Redis.from_url(server.url) as admin:
            admin.config_set("requirepass", "the-right-one")
        yield server
    shutil.rmtree(folder, ignore_errors=True)


# redis-py before 7.2 cannot take ?ssl_password= in asyncio clients: the adapters and
# AsyncEmitter refuse such a URL at once (test_ssl_password_needs_a_redis_py_that_takes_it),
# so there the other tests leave that form out.
USABLE_FORMS = [name for name in FORMS if _ASYNC_SSL_PASSWORD or "ssl_password" not in name]


@pytest.fixture(params=USABLE_FORMS)
def secret_url(request, auth_redis) -> str:
    """A URL holding SECRET in one of the forms redis-py reads credentials from."""
    return FORMS[request.param].format(
        s=SECRET, port=auth_redis.port, sock=auth_redis.unixsocket, dead=free_port()
    )


def _text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _logged(caplog) -> str:
    formatter = logging.Formatter("%(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def test_redact_url_hides_every_credential(secret_url):
    """redact_url keeps scheme, user and host but no password, whatever its form."""
    redacted = redact_url(secret_url)
    assert SECRET not in redacted and "***" in redacted
    assert redacted.split("://")[0] == secret_url.split("://")[0]
    assert check_url(secret_url) == secret_url  # every form is a valid URL


@pytest.mark.unit
@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}#x@127.0.0.1:6379/0",
        f"redis://ann:{SECRET}/x@127.0.0.1:6379/0",
        f"redis://ann:{SECRET}?x@127.0.0.1:6379/0",
        f"redis://ann:{SECRET}#x",
    ],
)
def test_unencoded_password_is_refused_without_showing_it(url):
    """A password with an unencoded # / ? is refused with a ValueError that hides it."""
    with pytest.raises(ValueError, match="percent-encode") as info:
        check_url(url)
    assert SECRET not in _text(info.value) and SECRET not in redact_url(url)
    with pytest.raises(ValueError) as info:
        Emitter(url)
    assert SECRET not in _text(info.value)


async def test_adapter_errors_and_logs_hide_the_secret(secret_url, caplog):
    """start() and emit() fail on a refused or unreachable Redis without showing the secret."""
    caplog.set_level(logging.DEBUG)
    adapter = AsyncRedisAdapter(secret_url, requests_timeout=0.5)
    socketio.AsyncServer(async_mode="asgi", client_manager=adapter)
    try:
        with pytest.raises(RedisAdapterError) as started:
            await adapter.start()
        with pytest.raises(PublishError) as published:
            await adapter.emit("ev", 1, namespace="/")
    finally:
        await adapter.aclose()
    assert "Redis" in str(started.value) and "Redis" in str(published.value)
    for text in (_text(started.value), _text(published.value), _logged(caplog)):
        assert SECRET not in text
    assert caplog.records  # the failure was logged
    assert SECRET not in repr(adapter._options)


async def test_emitter_errors_and_url_hide_the_secret(secret_url):
    """Emitter.url is redacted, and a failed publish raises PublishError without the secret."""
    sync = Emitter(secret_url)
    asynchronous = AsyncEmitter(secret_url)
    try:
        assert sync.url == asynchronous.url == redact_url(secret_url)
        assert sync.of("/admin").url == sync.url
        with pytest.raises(PublishError) as sync_error:
            sync.emit("ev", 1)
        with pytest.raises(PublishError) as async_error:
            await asynchronous.to("room").emit("ev", 1)
    finally:
        sync.close()
        await asynchronous.aclose()
    for exc in (sync_error.value, async_error.value):
        assert SECRET not in _text(exc) and "could not publish" in str(exc)
        assert "Redis at" in str(exc)


async def test_errors_name_the_clients_passed_in_without_their_secret():
    """With client= / sub_client= / pub_client=, errors name their host, not the default URL."""
    dead = f"redis://ann:{SECRET}@127.0.0.1:{free_port()}/0"
    where = redact_url(dead).replace("ann:***@", "")
    sync_client = redis.Redis.from_url(dead)
    async_client = redis.asyncio.Redis.from_url(dead)
    adapter = AsyncRedisAdapter(
        pub_client=async_client, sub_client=async_client, requests_timeout=0.5
    )
    socketio.AsyncServer(async_mode="asgi", client_manager=adapter)
    try:
        with pytest.raises(PublishError) as emitted:
            Emitter(client=sync_client).emit("ev")
        with pytest.raises(PublishError) as published:
            await AsyncEmitter(client=async_client).emit("ev")
        with pytest.raises(RedisAdapterError) as started:
            await adapter.start()
        with pytest.raises(PublishError) as broadcast:
            await adapter.emit("ev", 1, namespace="/")
    finally:
        await adapter.aclose()
        sync_client.close()
        await async_client.aclose()
    for exc in (emitted.value, published.value, started.value, broadcast.value):
        assert f"Redis at {where}" in str(exc) and SECRET not in _text(exc)


async def test_cli_errors_hide_the_secret(secret_url):
    """socketio-redis servers/emit fail with one line on stderr that does not show the secret."""
    for args in (("servers",), ("emit", "ev", "1")):
        code, out, err = await run_cli(*args, "--url", secret_url, "--timeout", "0.5")
        assert code == 1 and err.startswith("socketio-redis: error: ") and "Redis" in err
        assert SECRET not in out + err and "Traceback" not in err


# Handshakes: what fetch_sockets ships over Redis.

HEADERS = {
    "Cookie": "sid=cookie-secret",
    "Authorization": "Bearer authz-secret",
    "X-Api-Key": "apikey-secret",
    "X-Auth-Token": "authtoken-secret",
    "X-Custom": "visible",
}
QUERY = "?token=token-secret&Access_Token=access-secret&api_key=key-secret&lang=en"
HIDDEN = ["cookie-secret", "authz-secret", "apikey-secret", "authtoken-secret"]
HIDDEN += ["token-secret", "access-secret", "key-secret"]


async def _spy(url: str, key: str) -> tuple[redis.asyncio.Redis, Any]:
    """A Redis subscriber that sees every answer sent over the cluster's channels."""
    spy = redis.asyncio.Redis.from_url(url)
    pubsub = spy.pubsub()
    await pubsub.psubscribe(f"{key}*")
    confirmed = await pubsub.get_message(timeout=5)
    assert confirmed is not None and confirmed["type"] == "psubscribe"
    return spy, pubsub


async def _seen(pubsub: Any) -> bytes:
    seen = b""
    with anyio.fail_after(10):
        while (
            msg := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        ) is not None:
            seen += msg["data"]
    return seen


async def test_fetch_sockets_leaves_out_secret_headers_and_query(redis_server, key, make_node):
    """By default API keys, tokens and cookies never cross Redis; other fields still do."""
    a, b = await make_node(), await make_node()
    spy, pubsub = await _spy(redis_server.url, key)
    client = Client("secret-holder")
    await client.sio.connect(b.url + QUERY, transports=["websocket"], headers=HEADERS)
    try:
        found = {s.id: s for s in await a.adapter.fetch_sockets()}
        hs = found[client.sid()].handshake
        assert hs["headers"]["x-custom"] == "visible" and hs["query"]["lang"] == "en"
        assert hs["query"]["transport"] == "websocket" and "lang=en" in hs["url"]
        assert not {"token", "Access_Token", "api_key"} & set(hs["query"])
        assert "token" not in hs["url"].lower()
        for name in ("cookie", "authorization", "x-api-key", "x-auth-token"):
            assert name not in hs["headers"]
        traffic = await _seen(pubsub)
        assert b"visible" in traffic  # the spy did see the answer
        text = json.dumps(hs) + traffic.decode(errors="replace")
        assert not [secret for secret in HIDDEN if secret in text]
    finally:
        await client.aclose()
        await pubsub.aclose()
        await spy.aclose()


async def test_redacted_names_are_configurable(redis_server, key, make_node):
    """redact_headers/redact_query replace the defaults and match names case-insensitively."""
    a = await make_node()
    b = await make_node(redact_headers=["X-CUSTOM", "cookie"], redact_query={"LANG"})
    client = Client("configured")
    await client.sio.connect(b.url + QUERY, transports=["websocket"], headers=HEADERS)
    try:
        (sock,) = [s for s in await a.adapter.fetch_sockets() if s.id == client.sid()]
        headers, query = sock.handshake["headers"], sock.handshake["query"]
        assert "x-custom" not in headers and "cookie" not in headers
        assert headers["x-api-key"] == "apikey-secret"  # no longer in the redacted set
        assert "lang" not in query and query["token"] == "token-secret"
    finally:
        await client.aclose()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"redact_headers": "x-api-key"}, TypeError, "list or set of names"),
        ({"redact_headers": 3}, TypeError, "list or set of names"),
        ({"redact_query": [b"token"]}, TypeError, "non-empty str names"),
        ({"redact_query": [""]}, TypeError, "non-empty str names"),
        ({"redact_headers": ["x api key"]}, ValueError, "not an HTTP header name"),
        (
            {"redact_headers": ["cookie"], "share_sensitive_headers": True},
            ValueError,
            "either share_sensitive_headers=True or redact_headers",
        ),
    ],
)
def test_redaction_options_are_validated(options, error, message):
    """Bad redact_headers/redact_query values raise TypeError/ValueError saying what to pass."""
    with pytest.raises(error, match=message):
        AsyncRedisAdapter(**options)


async def test_ssl_password_needs_a_redis_py_that_takes_it():
    """?ssl_password= works where redis-py's asyncio client takes it, and is refused at
    construction, naming the fix and not the secret, where it does not (redis-py < 7.2)."""
    url = f"rediss://ann:{SECRET}@127.0.0.1:{free_port()}/0?ssl_password={SECRET}"
    if _ASYNC_SSL_PASSWORD:
        await AsyncEmitter(url).aclose()
        await AsyncRedisAdapter(url).aclose()
        return
    for build in (AsyncEmitter, AsyncRedisAdapter, AsyncShardedRedisAdapter):
        with pytest.raises(ValueError, match="needs redis-py 7.2 or newer") as info:
            build(url)
        assert SECRET not in _text(info.value)
