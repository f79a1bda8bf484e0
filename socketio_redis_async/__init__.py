"""asyncio Redis adapter for python-socketio, wire-compatible with Node's Socket.IO adapter."""

from __future__ import annotations

from ._adapter import AsyncRedisAdapter
from ._emitter import AsyncEmitter, AsyncEmitterOperator, Emitter, EmitterOperator
from ._errors import (
    AdapterClosedError,
    AnswerTooLargeError,
    PublishError,
    RedisAdapterError,
    RequestTimeoutError,
)
from ._handlers import CUSTOM_REQUEST_EVENT
from ._operator import BroadcastOperator
from ._sockets import RemoteSocket

__all__ = [
    "AdapterClosedError",
    "AnswerTooLargeError",
    "AsyncEmitter",
    "AsyncEmitterOperator",
    "AsyncRedisAdapter",
    "BroadcastOperator",
    "CUSTOM_REQUEST_EVENT",
    "Emitter",
    "EmitterOperator",
    "PublishError",
    "RedisAdapterError",
    "RemoteSocket",
    "RequestTimeoutError",
    "__version__",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("socketio-redis-async")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
