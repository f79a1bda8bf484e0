"""A real Sentinel topology on loopback: a master, a replica and three sentinels."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import redis.asyncio

from socketio_redis_async._cli.redis_server import (
    RedisServer,
    find_redis_server,
    free_port,
    stop_process,
)

SERVICE = "mymaster"


def _sentinel_command(config: Path) -> list[str]:
    # Debian's redis-sentinel; any redis-server binary runs as a sentinel with --sentinel.
    found = shutil.which("redis-sentinel")
    return [found, str(config)] if found else [find_redis_server(), str(config), "--sentinel"]


class SentinelTopology:
    """``with SentinelTopology() as t: t.url`` is a ``redis+sentinel://`` URL for the master."""

    def __init__(self, sentinels: int = 3, down_after_ms: int = 1000) -> None:
        self.master = RedisServer()
        self.replica = RedisServer(extra_args=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.ports = [free_port() for _ in range(sentinels)]
        self._down_after_ms = down_after_ms
        self._dir = tempfile.TemporaryDirectory(prefix="socketio-redis-sentinel-")
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"redis+sentinel://{hosts}/0/{SERVICE}"

    def start(self) -> SentinelTopology:
        self.master.start()
        self.replica.start()
        for port in self.ports:
            config = Path(self._dir.name) / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self._dir.name}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self._down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._procs.append(
                subprocess.Popen(
                    _sentinel_command(config),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return self

    async def wait_ready(self, timeout: float = 30) -> None:
        """Until the replica is in sync and every sentinel knows the replica and its peers."""
        replica = redis.asyncio.Redis.from_url(self.replica.url)
        clients = [redis.asyncio.Redis(port=port) for port in self.ports]
        try:
            with anyio.fail_after(timeout):
                while True:
                    try:
                        info = await replica.info("replication")
                        ready = info.get("master_link_status") == "up"
                        for client in clients:
                            replicas: Any = await client.sentinel_slaves(SERVICE)
                            peers: Any = await client.sentinel_sentinels(SERVICE)
                            ready = ready and len(replicas) == 1 and len(peers) == len(clients) - 1
                    except redis.RedisError:
                        ready = False
                    if ready:
                        return
                    await anyio.sleep(0.1)
        finally:
            await replica.aclose()
            for client in clients:
                await client.aclose()

    async def master_port(self) -> int:
        """The master's port as the first sentinel reports it now."""
        client = redis.asyncio.Redis(port=self.ports[0])
        try:
            address: Any = await client.sentinel_get_master_addr_by_name(SERVICE)
            return int(address[1])
        finally:
            await client.aclose()

    def close(self) -> None:
        for proc in self._procs:
            stop_process(proc)
        self._procs.clear()
        self.replica.close()
        self.master.close()
        self._dir.cleanup()

    def __enter__(self) -> SentinelTopology:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
