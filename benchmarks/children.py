"""The orchestrator's side of the child processes: start them, talk to them, meter their
CPU, and always stop them (stdin closed, then SIGTERM, then SIGKILL).

Every child (``worker.py`` roles and ``node_bench.js``) speaks the same protocol: a first
stdout line ``{"ready": true, "pid": N, ...}``, then one JSON command per stdin line
(``{"id": N, "cmd": name, ...args}``) answered by one stdout line
(``{"id": N, "ok": true, "result": ...}`` or ``{"id": N, "ok": false, "error": "..."}``).
A child exits when its stdin closes, so a killed run leaves no orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from socketio_redis_async._cli.redis_server import RedisServer, find_redis_server, free_port

from .contenders import NODE_CONTENDERS, NODE_SHARDED, NODE_STREAMS, NODE_STREAMS_CSR, STREAM

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "tests" / "interop" / "node_modules"
NODE_SCRIPT = ROOT / "benchmarks" / "node_bench.js"


def cluster_cli() -> str | None:
    """redis-cli next to the redis-server the benchmarks use, if that one is Redis 7+."""
    try:
        server = find_redis_server()
        version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
    except (RuntimeError, OSError):
        return None
    if "v=5." in version or "v=6." in version:
        return None
    return shutil.which("redis-cli", path=str(Path(server).parent)) or shutil.which("redis-cli")


def cluster_unavailable() -> str | None:
    """Why a Redis Cluster (and sharded pub/sub) cannot run, or None if it can."""
    if cluster_cli() is None:
        return "needs redis-server 7 or newer with its redis-cli (apt-get install redis-server)"
    return None


def node_available(contender: str = "") -> str | None:
    """Why the Node contenders (or ``contender``) cannot run, or None if they can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_MODULES / "@socket.io" / "redis-adapter").exists():
        return "tests/interop/node_modules is missing (npm ci --prefix tests/interop)"
    if contender.startswith(NODE_STREAMS):
        for package in ("@socket.io/redis-streams-adapter", "redis-v5"):
            if not (NODE_MODULES / package).exists():
                return f"no {package} in tests/interop/node_modules (npm ci --prefix tests/interop)"
    return None


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far, in seconds.

    psutil's ``cpu_times()`` counts in 10 ms clock ticks, too coarse for a server that
    should spend ~0 on a run; on Linux the scheduler's per-thread ``sum_exec_runtime``
    (nanoseconds, ``/proc/<pid>/task/*/sched``) is summed instead when it is readable.
    """
    total, found = 0.0, False
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"{task.path}/sched", encoding="ascii") as sched:
                for line in sched:
                    if line.startswith("se.sum_exec_runtime"):
                        total += float(line.rsplit(":", 1)[1]) / 1000.0
                        found = True
                        break
    except OSError:
        found = False
    if found:
        return total
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


class CpuMeter:
    """CPU seconds of named processes between two snapshots."""

    def __init__(self) -> None:
        self.pids: dict[str, list[int]] = {}

    def add(self, role: str, pid: int) -> None:
        self.pids.setdefault(role, []).append(pid)

    def snapshot(self) -> dict[str, float]:
        return {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.pids.items()}

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {role: after[role] - before.get(role, 0.0) for role in after}


class Child:
    """A started child process: its ready message, and commands sent to it."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, ready: dict[str, Any]):
        self.name = name
        self.proc = proc
        self.ready = ready
        self.pid = proc.pid
        self._next = 0
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def port(self) -> int:
        """The Socket.IO port of a server (not every child has one)."""
        return int(self.ready["port"])

    async def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        while line := await stdout.readline():
            reply = json.loads(line)
            fut = self._replies.pop(reply["id"], None)
            if fut is None or fut.done():
                continue
            if reply["ok"]:
                fut.set_result(reply["result"])
            else:
                fut.set_exception(RuntimeError(f"{self.name}: {reply['error']}"))
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"{self.name} exited"))

    async def call(self, cmd: str, bound: float = 60, **args: Any) -> Any:
        """Send one command and return its result; ``bound`` limits the wait for it."""
        self._next += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[self._next] = fut
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps({"id": self._next, "cmd": cmd, **args}).encode() + b"\n")
        await stdin.drain()
        try:
            return await asyncio.wait_for(fut, bound)
        except asyncio.TimeoutError:
            raise RuntimeError(f"{self.name}: no answer to {cmd} within {bound} s") from None

    def close(self) -> None:
        """Stop reading and close stdin: the child exits on its own."""
        self._reader.cancel()
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()


class Processes:
    """Owns every child process and redis-server it started; ``async with`` stops them."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.procs: list[asyncio.subprocess.Process] = []
        self.redis: list[RedisServer] = []

    async def __aenter__(self) -> Processes:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def start_redis(self) -> RedisServer:
        server = RedisServer().start()
        self.redis.append(server)
        return server

    def start_redis_cluster(self, masters: int) -> list[RedisServer]:
        """A Redis Cluster of ``masters`` masters (no replicas) on loopback ports."""
        cli = cluster_cli()
        assert cli is not None, cluster_unavailable()
        nodes = []
        for _ in range(masters):
            args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
            node = RedisServer(extra_args=(*args, "--cluster-port", str(free_port())))
            self.redis.append(node.start())
            nodes.append(node)
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        create = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0"]
        subprocess.run([*create, "--cluster-yes"], check=True, capture_output=True, timeout=60)
        for node in nodes:
            for _ in range(600):
                info = subprocess.run(
                    [cli, "-p", str(node.port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout
                if "cluster_state:ok" in info:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"the benchmark cluster is not ok on node {node.port}")
        return nodes

    async def spawn(self, name: str, args: list[str], ready_timeout: float = 30) -> Child:
        """Start ``args`` and return once it printed its JSON ready line."""
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            cwd=ROOT,
            limit=16 * 1024 * 1024,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), ready_timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(f"{name} did not get ready within {ready_timeout} s") from None
        if not line:
            raise RuntimeError(f"{name} exited before it was ready ({await proc.wait()})")
        child = Child(name, proc, json.loads(line))
        self.children.append(child)
        return child

    async def worker(self, name: str, role: str, *args: str) -> Child:
        """``python -m benchmarks.worker role args`` with this interpreter."""
        return await self.spawn(name, [sys.executable, "-m", "benchmarks.worker", role, *args])

    async def server(
        self,
        name: str,
        contender: str,
        redis_url: str,
        key: str,
        cluster: bool = False,
        stream: str = STREAM,
    ) -> Child:
        """A server (or emitter) process of ``contender``: Node's script or a worker;
        ``cluster``: ``redis_url`` is a node of a Redis Cluster (Node needs to be told);
        ``stream``: the Redis stream of the streams contenders."""
        if contender in NODE_CONTENDERS:
            args = ["node", str(NODE_SCRIPT), "--redis", redis_url, "--key", key]
            args += ["--sharded", "yes" if contender == NODE_SHARDED else "no"]
            args += ["--streams", "yes" if contender.startswith(NODE_STREAMS) else "no"]
            args += ["--csr", "yes" if contender == NODE_STREAMS_CSR else "no"]
            args += ["--stream", stream]
            return await self.spawn(name, [*args, "--cluster", "yes" if cluster else "no"])
        options = ("--contender", contender, "--redis", redis_url, "--key", key)
        return await self.worker(name, "server", *options, "--stream", stream)

    async def close(self, child: Child) -> None:
        """Stop one child now (the rest stop with ``aclose``)."""
        child.close()
        await _stop(child.proc)
        self.children.remove(child)
        self.procs.remove(child.proc)

    async def aclose(self) -> None:
        for child in self.children:
            child.close()
        for proc in self.procs:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
        for proc in self.procs:
            await _stop(proc)
        self.children.clear()
        self.procs.clear()
        for server in self.redis:
            with contextlib.suppress(Exception):
                server.close()
        self.redis.clear()


async def _stop(proc: asyncio.subprocess.Process) -> None:
    for attempt in ("wait", "terminate", "kill"):
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if attempt == "terminate":
                proc.terminate()
            elif attempt == "kill":
                proc.kill()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 3 if attempt != "kill" else 10)
