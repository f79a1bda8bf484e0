"""Turning recovery on for a manager: the ``Recovery`` built over the manager's engine and
a ``SessionStore`` (Redis for the streams adapter, ``memory_store`` in one process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._protocol import sharded, streams
from .._protocol.messages import Broadcast
from . import host
from .options import ConnectionStateRecovery
from .recovery import Recovery
from .store import SessionStore

if TYPE_CHECKING:
    from .._manager import ClusterManager


def attach(
    manager: ClusterManager,
    settings: ConnectionStateRecovery,
    store: SessionStore,
    *,
    key_prefix: str,
    stream_of: Callable[[str], str],
    offset: Callable[[str], bytes | None],
    max_len: int,
) -> Recovery:
    """Give ``manager`` connection-state recovery (before or after it is attached to its
    server); ``offset(stream)`` is where its transport started reading ``stream`` (until
    its receiver has handled an entry)."""
    engine = manager._engine
    positions = engine.receiver.positions

    def snapshot(nsp: str, sid: str) -> tuple[list[Any], Any] | None:
        info = engine.local.info.get((nsp, sid))
        if info is None:
            return None
        return [r for r in manager.get_rooms(sid, nsp) if r is not None], info[1]

    recovery = Recovery(
        settings,
        store,
        key_prefix=key_prefix,
        stream_of=stream_of,
        position=lambda s: positions.get(s.encode()) or offset(s),
        decode=replayable,
        uid=lambda: engine.uid,
        snapshot=snapshot,
        timeout=manager._options.requests_timeout,
        max_entries=2 * max_len + 1000,
        logger=manager.logger,
    )
    manager._recovery = recovery
    engine.add_offsets(recovery)
    if manager.server is not None:  # attached already: check and hook it now
        host.check(manager.server, recovery.pid_of)
    return recovery


def replayable(fields: list[bytes]) -> tuple[str, Broadcast | None]:
    """A stream entry read back for a replay: its sender, and its broadcast if it is one."""
    msg = streams.decode_entry(fields)
    return msg.uid, sharded.as_broadcast(msg)
