"""Exceptions raised by socketio_redis_async.

Hierarchy::

    RedisAdapterError
     ├── PublishError          a PUBLISH to Redis failed; nothing was sent to other servers
     ├── AdapterClosedError    the adapter or emitter was used after ``aclose()``
     └── MalformedMessage      internal: a message read from Redis failed validation
"""

from __future__ import annotations


class RedisAdapterError(Exception):
    """Base class of every error this package raises on purpose."""


class PublishError(RedisAdapterError):
    """Raised when a message could not be published to Redis.

    Local delivery (if any) has already happened; other servers got nothing.
    """


class AdapterClosedError(RedisAdapterError):
    """Raised when an adapter or emitter is used after it was closed."""


class MalformedMessage(RedisAdapterError):
    """A message read from Redis is not valid; it is dropped and counted."""
