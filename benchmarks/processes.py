"""Child processes of a benchmark run: start them, read their ready line, measure their CPU,
and always stop them (stdin closed, then SIGTERM, then SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from socketio_redis_async._redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


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
    """A started child process whose first stdout line is a JSON ready message."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, ready: dict[str, Any]):
        self.name = name
        self.proc = proc
        self.ready = ready
        self.pid = proc.pid


class Processes:
    """Owns every child process of one cluster; ``async with`` stops them all."""

    def __init__(self) -> None:
        self.children: list[asyncio.subprocess.Process] = []
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

    async def spawn(
        self,
        name: str,
        args: list[str],
        *,
        ready_timeout: float = 30,
    ) -> Child:
        """Start ``args`` and return once it printed its JSON ready line."""
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            cwd=ROOT,
            limit=16 * 1024 * 1024,
        )
        self.children.append(proc)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), ready_timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(f"{name} did not get ready within {ready_timeout} s") from None
        if not line:
            raise RuntimeError(f"{name} exited before it was ready ({await proc.wait()})")
        return Child(name, proc, json.loads(line))

    async def python(self, name: str, module: str, *args: str) -> Child:
        """``python -m benchmarks.<module> args`` with this interpreter."""
        return await self.spawn(name, [sys.executable, "-m", f"benchmarks.{module}", *args])

    async def run_json(self, name: str, module: str, *args: str, timeout: float = 600) -> Any:
        """Run ``python -m benchmarks.<module> args`` to the end; parse its last line."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"benchmarks.{module}",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        self.children.append(proc)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(f"{name} did not finish within {timeout} s") from None
        if proc.returncode != 0 or not out.strip():
            raise RuntimeError(f"{name} failed with exit code {proc.returncode}")
        return json.loads(out.strip().splitlines()[-1])

    async def aclose(self) -> None:
        for proc in self.children:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
        for proc in self.children:
            await _stop(proc)
        self.children.clear()
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
