"""URL forms: Sentinel parsing, valkey aliases, redaction, and the errors for bad URLs."""

from __future__ import annotations

import pytest

from socketio_redis_async import AsyncRedisAdapter, Emitter
from socketio_redis_async._options import redact_url
from socketio_redis_async._transport.clients import parse_sentinel_url, plain_url

pytestmark = pytest.mark.unit  # no Redis, no subprocess: tests/conftest.py checks


def test_sentinel_url_is_parsed_like_python_socketio():
    """Hosts, db, service and credentials come out as python-socketio reads them."""
    target = parse_sentinel_url("redis+sentinel://user:p%40ss@h1:26379,h2:26380/2/mymaster")
    assert target.sentinels == (("h1", 26379), ("h2", 26380))
    assert (target.db, target.service) == (2, "mymaster")
    assert (target.username, target.password) == ("user", "p@ss")
    assert target.connection_kwargs() == {"db": 2, "username": "user", "password": "p@ss"}


@pytest.mark.parametrize(
    "url, message",
    [
        ("redis+sentinel://h1:26379/0", "/<db>/<service name>"),
        ("redis+sentinel://h1/0/mymaster", "must be host:port"),
        ("redis+sentinel://h1:99999/0/mymaster", "must be host:port"),
        ("valkey+sentinel://:pw@h1:26379/x/mymaster", "/<db>/<service name>"),
    ],
)
def test_bad_sentinel_urls_say_what_to_write(url, message):
    """A malformed Sentinel URL raises ValueError naming the expected form, never the password."""
    with pytest.raises(ValueError, match="redis\\+sentinel://user:password@host1") as info:
        AsyncRedisAdapter(url)
    assert message in str(info.value)
    assert "pw@" not in str(info.value)


def test_valkey_schemes_are_accepted_everywhere():
    """valkey://, valkeys:// and valkey+sentinel:// pass validation in the adapter and emitters."""
    for url in (
        "valkey://localhost:6379/0",
        "valkeys://localhost:6380/0",
        "valkey+sentinel://localhost:26379/0/mymaster",
    ):
        AsyncRedisAdapter(url)
        Emitter(url).close()
    assert plain_url("valkeys://h:1/0") == "rediss://h:1/0"
    assert plain_url("redis://h:1/0") == "redis://h:1/0"


def test_sentinel_passwords_are_redacted():
    """A Sentinel URL with several hosts has its password hidden in messages."""
    assert (
        redact_url("redis+sentinel://u:secret@h1:1,h2:2/0/m")
        == "redis+sentinel://u:***@h1:1,h2:2/0/m"
    )
