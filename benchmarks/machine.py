"""What the benchmark ran on: CPU, cores, memory, and the versions of everything."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

from socketio_redis_async._cli.redis_server import find_redis_server

from .children import NODE_MODULES, node_available

PACKAGES: tuple[str, ...] = ("socketio-redis-async", "python-socketio", "python-engineio", "redis")
PACKAGES += ("hiredis", "msgpack", "aiohttp")
NODE_PACKAGES: tuple[str, ...] = ("socket.io", "@socket.io/redis-adapter", "redis")
NODE_PACKAGES += ("@socket.io/redis-streams-adapter", "redis-v5")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _output(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def _redis_version() -> str:
    text = _output(find_redis_server(), "--version")
    for part in text.split():
        if part.startswith("v="):
            return part[2:]
    return text


def _node_versions() -> dict[str, str]:
    if node_available():
        return {}
    found = {"node": _output("node", "--version").lstrip("v")}
    for name in NODE_PACKAGES:
        try:
            meta = json.loads((NODE_MODULES / name / "package.json").read_text())
            found[f"npm {name}"] = str(meta["version"])
        except (OSError, ValueError, KeyError):
            found[f"npm {name}"] = "unavailable"
    return found


def describe() -> dict[str, str]:
    """Machine and software facts for RESULTS.md and results.json."""
    info = {
        "cpu": _cpu_model(),
        "cores (logical)": str(psutil.cpu_count(logical=True)),
        "cores (physical)": str(psutil.cpu_count(logical=False)),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "redis-server": _redis_version(),
    }
    info.update(_node_versions())
    for name in PACKAGES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    return info
