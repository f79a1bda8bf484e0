"""asyncio Redis adapter for python-socketio, wire-compatible with Node's Socket.IO adapter."""

from __future__ import annotations

from ._adapter import AsyncRedisAdapter
from ._errors import AdapterClosedError, PublishError, RedisAdapterError
from ._operator import BroadcastOperator

__all__ = [
    "AdapterClosedError",
    "AsyncRedisAdapter",
    "BroadcastOperator",
    "PublishError",
    "RedisAdapterError",
    "__version__",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("socketio-redis-async")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
