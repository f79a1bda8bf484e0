"""Exceptions raised by socketio_redis_async.

Hierarchy::

    RedisAdapterError
     ├── RedisCommandError     a Redis command failed, was refused, or did not answer in time
     │    ├── PublishError     a PUBLISH failed or timed out; not known to be delivered
     │    └── AccessDeniedError  Redis refused the credentials or an ACL permission
     ├── AdapterClosedError    the adapter or emitter was used after ``aclose()``
     ├── RequestTimeoutError   other servers did not all answer in time (also a TimeoutError)
     └── MalformedMessage      internal: a message read from Redis failed validation
"""

from __future__ import annotations

from typing import Any


class RedisAdapterError(Exception):
    """Base class of every error this package raises on purpose."""


class RedisCommandError(RedisAdapterError):
    """A Redis command failed, was refused, or did not answer in time; the cause is chained.

    The message names the Redis URL with any password redacted; ``__cause__`` holds the
    redis-py or OS error (or the ``TimeoutError`` of the bound that expired).
    """


class PublishError(RedisCommandError):
    """Raised when a message could not be published to Redis within ``publish_timeout``.

    Local delivery (if any) has already happened. Other servers got nothing, unless Redis
    ran the command and only its answer was lost (a timeout, a corrupt reply, a dropped
    connection): then the message may still have been delivered.
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


class AccessDeniedError(RedisCommandError):
    """Redis refused this client: a wrong user name or password, or an ACL permission.

    ``user`` is the ACL user the URL or client names (``default`` when it names none);
    ``command`` is ``AUTH`` for an authentication failure, else the refused command as
    Redis names it (``SUBSCRIBE``, ``PSUBSCRIBE``...), or None when Redis does not say.
    Retrying does not help until the URL or the ACL changes; the listener retries anyway,
    so fixing the ACL is enough.
    """

    def __init__(self, message: str, *, user: str, command: str | None) -> None:
        super().__init__(message)
        self.user = user
        self.command = command


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
