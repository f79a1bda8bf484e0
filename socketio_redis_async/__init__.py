"""asyncio Redis adapter for python-socketio, wire-compatible with Node's Socket.IO adapter."""

from __future__ import annotations

from ._adapter import AsyncRedisAdapter
from ._admin import ClusterInstrumentedAsyncServer, instrument
from ._emitter import AsyncEmitter, AsyncEmitterOperator, Emitter, EmitterOperator
from ._errors import (
    AccessDeniedError,
    AdapterClosedError,
    AnswerTooLargeError,
    PublishError,
    RedisAdapterError,
    RedisCommandError,
    RequestTimeoutError,
)
from ._health import AdapterHealth
from ._local.handshake import DEFAULT_REDACTED_HEADERS, DEFAULT_REDACTED_QUERY
from ._metrics import (
    PrometheusCollector,
    metrics_app,
    metrics_handler,
    prometheus_text,
)
from ._operator import BroadcastOperator
from ._protocol.messages import CUSTOM_REQUEST_EVENT
from ._recovery.options import ConnectionStateRecovery
from ._sharded_adapter import AsyncShardedRedisAdapter
from ._sockets import RemoteSocket
from ._streams_adapter import AsyncStreamsRedisAdapter

__all__ = [
    "AccessDeniedError",
    "AdapterClosedError",
    "AdapterHealth",
    "AnswerTooLargeError",
    "AsyncEmitter",
    "AsyncEmitterOperator",
    "AsyncRedisAdapter",
    "AsyncShardedRedisAdapter",
    "AsyncStreamsRedisAdapter",
    "BroadcastOperator",
    "CUSTOM_REQUEST_EVENT",
    "ClusterInstrumentedAsyncServer",
    "ConnectionStateRecovery",
    "DEFAULT_REDACTED_HEADERS",
    "DEFAULT_REDACTED_QUERY",
    "Emitter",
    "EmitterOperator",
    "PrometheusCollector",
    "PublishError",
    "RedisAdapterError",
    "RedisCommandError",
    "RemoteSocket",
    "RequestTimeoutError",
    "__version__",
    "instrument",
    "metrics_app",
    "metrics_handler",
    "prometheus_text",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("socketio-redis-async")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
