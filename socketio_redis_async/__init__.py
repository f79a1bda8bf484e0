"""asyncio Redis adapter for python-socketio, wire-compatible with Node's Socket.IO Redis adapter."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._adapter import AsyncRedisAdapter
from ._errors import AdapterClosedError, PublishError, RedisAdapterError
from ._operator import BroadcastOperator

try:
    __version__ = version("socketio-redis-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AdapterClosedError",
    "AsyncRedisAdapter",
    "BroadcastOperator",
    "PublishError",
    "RedisAdapterError",
    "__version__",
]
