"""``Cluster``: what the engine's operations (broadcasts, queries, socket operations) see
of the engine: its collaborators and its part of the requests layer's bus.

The engine implements it; the operations never import the engine, so each part can be
read, and driven over the in-memory transport, on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._local.delivery import Delivery
    from .._local.host import Host
    from .._local.sockets import LocalSockets
    from .._options import Options
    from .._protocol.channels import NamespaceChannels
    from .._protocol.wire import Outgoing, WireFormat
    from .._transport.base import Transport
    from .bridge import Bridge
    from .plan import NamespacePlan
    from .requests import Requester


class Offsets(Protocol):
    """Where a broadcast's stream offset is reported (connection-state recovery on)."""

    def sent_locally(self, stream: str, entry_id: bytes) -> None:
        """This server delivered its own entry ``entry_id`` to its local sockets."""


class Cluster(Protocol):
    """The engine as its operations use it."""

    options: Options
    wire: WireFormat
    transport: Transport
    plan: NamespacePlan
    local: LocalSockets
    delivery: Delivery
    requests: Requester
    bridge: Bridge | None
    host: Host
    logger: logging.Logger
    handlers: dict[tuple[str, str], Callable[..., Any]]
    custom_hook: Callable[[Any], Any] | None
    offsets: Offsets | None
    """Set with connection-state recovery: broadcasts carry their stream offset."""

    @property
    def uid(self) -> str: ...

    def serving(self, nsp: str) -> AbstractAsyncContextManager[NamespaceChannels]: ...

    async def count_servers(self, nsp: str) -> int: ...

    async def publish_request(self, nsp: str, request: dict[str, Any]) -> None: ...

    async def send(self, out: Outgoing, *, queued: bool = False) -> bytes | None: ...

    async def bridged(self, method: str, namespace: str, **fields: Any) -> None: ...

    def unhold(self, nsp: str) -> None: ...

    def keeps(self, nsp: str) -> bool: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...
