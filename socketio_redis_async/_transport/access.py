"""Redis authentication and ACL permissions: precise errors, and a best-effort client name.

Redis reports a wrong password as ``WRONGPASS``/``NOAUTH`` (redis-py raises
``AuthenticationError``) and a missing ACL permission as ``NOPERM`` (``NoPermissionError``,
or an error reply read on the pub/sub connection). Both are turned into one
:class:`AccessDeniedError` that names the user and what was refused; the password never
appears, only the redacted URL.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import AuthenticationError, NoPermissionError

from .._errors import AccessDeniedError, RedisCommandError

_COMMAND = re.compile(r"run the '([^']+)' command")


def client_location(client: Any) -> str:
    """Where a redis-py client connects, as a URL without credentials (for messages)."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"{scheme}://{host}:{port}/{kwargs.get('db', 0)}"


def acl_user(connection_kwargs: dict[str, Any]) -> str:
    """The ACL user a connection with these redis-py settings authenticates as."""
    if connection_kwargs.get("credential_provider") is not None:
        return "(from the credential provider)"
    username = connection_kwargs.get("username")
    if not username:
        return "default"
    # A lone ``secret@host`` is a user name for redis-py but a password for redis-cli.
    return str(username) if connection_kwargs.get("password") is not None else "***"


def access_error(
    exc: BaseException, *, user: str, where: str, key: str
) -> AccessDeniedError | None:
    """The :class:`AccessDeniedError` that ``exc`` means, or None if it is another failure.

    ``exc`` is what redis-py raised, or an error reply read on the pub/sub connection.
    """
    while len(getattr(exc, "exceptions", ())) == 1:  # a task group's single error
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    if isinstance(exc, AccessDeniedError):
        return exc
    if isinstance(exc, RedisCommandError) and exc.__cause__ is not None:
        exc = exc.__cause__  # what redis-py raised, behind the package's own error
    text = str(exc)
    if isinstance(exc, AuthenticationError) or text.startswith(("WRONGPASS", "NOAUTH")):
        return AccessDeniedError(
            f"authentication failed for user {user!r} at Redis {where} ({text}); "
            "check the user name and password in the URL",
            user=user,
            command="AUTH",
        )
    if not (isinstance(exc, NoPermissionError) or text.startswith("NOPERM")):
        return None
    text = text.removeprefix("NOPERM ")
    found = _COMMAND.search(text)
    if found:
        command: str | None = found.group(1).upper().replace("|", " ")
        what = f"permission for {command}"
    else:
        command = None
        what = (
            f"permission for one of the channels it uses ({key}#*, {key}-request#*, "
            f"{key}-response#*; a PSUBSCRIBE pattern such as {key}#/#* must be allowed "
            "exactly)"
        )
    return AccessDeniedError(
        f"user {user!r} lacks {what} at Redis {where} ({text}); see 'Security' in the "
        "README for the ACL rules a server needs",
        user=user,
        command=command,
    )


async def set_client_name(conn: AbstractConnection, name: str, timeout: float) -> bool:
    """``CLIENT SETNAME``, best effort: False if the ACL user lacks the CLIENT permission.

    A refusal other than NOPERM (e.g. NOAUTH: the URL has no password) is raised.
    """
    with anyio.fail_after(timeout):
        await conn.send_command("CLIENT", "SETNAME", name, check_health=False)
        try:
            await conn.read_response()
        except NoPermissionError:
            return False
    return True
