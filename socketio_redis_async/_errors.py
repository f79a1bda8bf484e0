"""Exceptions raised by socketio_redis_async.

Hierarchy::

    RedisAdapterError
     ├── PublishError          a PUBLISH to Redis failed; nothing was sent to other servers
     ├── AdapterClosedError    the adapter or emitter was used after ``aclose()``
     ├── RequestTimeoutError   other servers did not all answer in time (also a TimeoutError)
     └── MalformedMessage      internal: a message read from Redis failed validation
"""

from __future__ import annotations

from typing import Any


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


class RequestTimeoutError(RedisAdapterError, TimeoutError):
    """Raised when other servers did not all answer a request within its timeout.

    ``args[0]`` is the Node adapter's own error text (for example ``timeout reached: only 1
    responses received out of 2``). ``responses`` holds what did arrive, and
    ``silent_servers`` the uids of live servers (listening on their own response channel)
    that did not answer. Node servers do not sign their answers, so in a mixed cluster
    ``unsigned_answers`` of the servers listed may in fact have answered.
    """

    def __init__(
        self,
        message: str,
        responses: list[Any],
        silent_servers: list[str] | None = None,
        unsigned_answers: int = 0,
    ) -> None:
        super().__init__(message)
        self.responses = responses
        self.silent_servers = silent_servers or []
        self.unsigned_answers = unsigned_answers

    def __str__(self) -> str:
        text = str(self.args[0])
        if self.silent_servers:
            text += f" (no answer from server {', '.join(self.silent_servers)})"
        return text


class AnswerTooLargeError(RedisAdapterError):
    """Raised when other servers answered that their answer was over their
    ``max_answer_size`` (so they sent an error instead of the answer).

    ``responses`` holds the answers that did arrive and ``servers`` the uids of the
    servers whose answer was too large; ``args[0]`` says how large it was.
    """

    def __init__(self, message: str, responses: list[Any], servers: list[str]) -> None:
        super().__init__(message)
        self.responses = responses
        self.servers = servers
