"""TLS (rediss://): a cluster whose Redis only speaks TLS."""

from __future__ import annotations

import os

import pytest
import trustme

from socketio_redis_async._cli.redis_server import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """A redis-server serving TLS only, with a certificate from a throwaway CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    files = [str(folder / name) for name in ("cert.pem", "key.pem", "ca.pem")]
    cert.cert_chain_pems[0].write_to_path(files[0])
    cert.private_key_pem.write_to_path(files[1])
    ca.cert_pem.write_to_path(files[2])
    server = RedisServer(tls=(files[0], files[1], files[2]))
    try:
        server.start()
    except RuntimeError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"this redis-server cannot serve TLS: {exc}")
        pytest.skip(f"this redis-server cannot serve TLS: {exc}")
    yield server, files[2]
    server.close()


async def test_cluster_over_tls(tls_redis, key, make_node, make_client):
    """Two servers on rediss:// exchange broadcasts and answer cluster requests."""
    server, ca_file = tls_redis
    url = f"{server.url}?ssl_ca_certs={ca_file}"
    a, b = await make_node(url=url), await make_node(url=url)
    client = await make_client(b)
    await a.sio.emit("secure", b"\x01")
    assert await client.wait_for("secure") == [[b"\x01"]]
    assert await a.adapter.all_rooms() == {client.sid()}


async def test_plain_connection_to_tls_redis_fails_clearly(tls_redis, key, make_node):
    """redis:// against a TLS-only Redis makes start() fail with a clear error."""
    from socketio_redis_async import RedisAdapterError

    server, _ = tls_redis
    with pytest.raises(RedisAdapterError, match="did not confirm"):
        await make_node(url=f"redis://127.0.0.1:{server.port}/0", requests_timeout=0.5)
