"""``Recovery``: connection-state recovery for one server (the adapter's half of it).

* **Sessions live in Redis from the connect on** (written before the CONNECT answer,
  re-written when rooms or data change, refreshed while connected), so a client that
  comes back at once, or whose server died, finds it. A disconnect that can be recovered
  sets the window (``max_disconnection_duration``) from that moment; one that cannot (the
  client left the namespace, the server disconnected it) deletes the session.
* **Restore** reads the session (kept until the new connection replaces it, so a
  reconnect that fails half-way can try again), checks that the client's offset is still
  in the stream, and reads the entries after it (XRANGE, in bounded pages). The replay is
  cut where this server's own handling of the stream stood when the socket was registered
  (``missed``): what came before is replayed, what comes after arrives live, so each
  packet arrives once, in order, before any new one.
* Failures give the client a new session, as in Node, and are counted by reason with one
  log line per reason every 10 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from .._errors import MalformedMessage
from .._protocol.rooms import Room
from .options import ConnectionStateRecovery
from .replay import Decode, Replay
from .sessions import (
    RecoveryFailed,
    Restore,
    Session,
    decode_session,
    encode_session,
    is_offset,
    new_pid,
)
from .store import SessionStore


@dataclass(slots=True)
class _Live:
    pid: str
    written: bytes | None = None  # the value last stored (the condition of the next write)
    offset: str | None = None


class Recovery:
    """Sessions and replays of the sockets of one server."""

    def __init__(
        self,
        settings: ConnectionStateRecovery,
        store: SessionStore,
        *,
        key_prefix: str,
        stream_of: Callable[[str], str],
        position: Callable[[str], bytes | None],
        decode: Decode,
        uid: Callable[[], str],
        snapshot: Callable[[str, str], tuple[list[Room], Any] | None],
        timeout: float,
        max_entries: int,
        logger: logging.Logger,
    ) -> None:
        self.settings = settings
        self._store = store
        self._prefix = key_prefix
        self._stream_of = stream_of
        self._position = position
        self._replay = Replay(store, decode, position, max_entries)
        self._uid = uid
        self._snapshot = snapshot
        self._timeout = timeout
        self._logger = logger
        self._live: dict[tuple[str, str], _Live] = {}
        self._recovered: set[tuple[str, str]] = set()
        self._own: dict[str, bytes] = {}  # stream -> last own entry delivered locally
        self._dirty: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.refresh_every = min(60.0, max(1.0, settings.max_disconnection_duration / 3))
        self._live_ttl = settings.window_ms + int(2000 * self.refresh_every)
        self.recovered = 0
        self.failures: Counter[str] = Counter()
        self._logged: dict[str, float] = {}

    # -- what the rest of the adapter asks ----------------------------------------------

    def pid_of(self, nsp: str, sid: str) -> str | None:
        """The pid of a local socket (for its CONNECT answer)."""
        live = self._live.get((nsp, sid))
        return None if live is None else live.pid

    def is_recovered(self, nsp: str, sid: str) -> bool:
        """Whether this local socket got its session back when it connected."""
        return (nsp, sid) in self._recovered

    def sent_locally(self, stream: str, entry_id: bytes) -> None:
        """This server delivered its own entry ``entry_id`` to its local sockets."""
        self._own[stream] = entry_id

    def changed(self, nsp: str, sid: str) -> None:
        """A local socket's rooms or data changed: store its session again, soon."""
        if (nsp, sid) in self._live:
            self._dirty.add((nsp, sid))
            self._wake.set()

    # -- restore ------------------------------------------------------------------------

    async def restore(self, nsp: str, auth: Any) -> Restore | None:
        """The session a CONNECT asks for (auth ``pid``, and ``offset`` unless the session
        knows it), or None: not asked, or not possible (counted, logged)."""
        pid = auth.get("pid") if isinstance(auth, dict) else None
        if not isinstance(pid, str) or not pid:
            return None
        try:
            with anyio.fail_after(self._timeout):
                session = await self._session(pid, auth.get("offset"))
                return await self._replay.start(session, nsp, self._stream_of(nsp))
        except RecoveryFailed as exc:
            self._fail(str(exc), pid)
        except Exception as exc:  # Redis down or slow: a new session
            self._fail("redis_error", pid, f"{type(exc).__name__}: {exc}")
        return None

    async def catch_up(self, restore: Restore) -> bool:
        """Read what was added since ``restore`` was read, up to where this server's
        handling of the stream stands. Register the socket right after it returns True,
        without awaiting in between. False (counted, logged) if Redis failed."""
        try:
            with anyio.fail_after(self._timeout):
                await self._replay.read(restore)
            return True
        except RecoveryFailed as exc:
            self._fail(str(exc), restore.session.pid)
        except Exception as exc:
            self._fail("redis_error", restore.session.pid, f"{type(exc).__name__}: {exc}")
        return False

    async def _session(self, pid: str, offset: Any) -> Session:
        if offset is not None and not is_offset(offset):
            raise RecoveryFailed("invalid_offset")
        raw = await self._store.get(self._prefix + pid)
        if raw is None:
            raise RecoveryFailed("no_session")  # unknown pid, or expired
        try:
            session = decode_session(raw)
        except MalformedMessage:
            raise RecoveryFailed("corrupt_session") from None
        session.offset = offset or session.offset
        return session

    def missed(self, restore: Restore) -> list[list[Any]]:
        """The packets to replay (see ``Replay.missed``)."""
        return self._replay.missed(restore, self._uid(), self._own.get(restore.stream))

    def _fail(self, reason: str, pid: str, detail: str = "") -> None:
        self.failures[reason] += 1
        now = asyncio.get_running_loop().time()
        if now - self._logged.get(reason, -1e9) >= 10.0:
            self._logged[reason] = now
            self._logger.info(
                "could not recover session %s…: %s%s (%d so far); the client gets a new one",
                pid[:6],
                reason,
                f" ({detail})" if detail else "",
                self.failures[reason],
            )

    # -- sessions of connected sockets --------------------------------------------------

    async def connected(self, nsp: str, sid: str, restore: Restore | None) -> None:
        """Store the session of a new or recovered socket, before its CONNECT answer."""
        session = restore.session if restore is not None else None
        stream = self._stream_of(nsp)
        position = self._position(stream)
        live = _Live(
            session.pid if session is not None else new_pid(),
            offset=position.decode() if position is not None else None,
        )
        self._live[(nsp, sid)] = live
        if self._task is None:  # its own task, stopped by aclose()
            self._task = asyncio.get_running_loop().create_task(
                self._keep(), name="socketio-redis-async recovery sessions"
            )
        if session is not None:
            self._recovered.add((nsp, sid))
            self.recovered += 1
        try:
            await self._write(nsp, sid, live, self._live_ttl, unconditional=True)
        except Exception as exc:  # the socket connects all the same; the refresh retries
            self._store_failed(exc)

    async def disconnected(self, nsp: str, sid: str, recoverable: bool) -> None:
        """Keep the session for the window (``recoverable``), or delete it."""
        live = self._live.get((nsp, sid))
        if live is None:
            return
        try:
            if recoverable:
                await self._write(nsp, sid, live, self.settings.window_ms)
            elif live.written is not None:
                with anyio.fail_after(self._timeout):
                    await self._store.drop(self._prefix + live.pid, live.written)
        except Exception as exc:
            self._store_failed(exc)
        finally:
            self.forget(nsp, sid)

    def forget(self, nsp: str, sid: str) -> None:
        """Stop keeping a socket's session (it is gone from this server)."""
        self._live.pop((nsp, sid), None)
        self._recovered.discard((nsp, sid))
        self._dirty.discard((nsp, sid))

    async def _write(
        self, nsp: str, sid: str, live: _Live, ttl_ms: int, unconditional: bool = False
    ) -> None:
        state = self._snapshot(nsp, sid)
        if state is None:
            return
        rooms, data = state
        value = encode_session(Session(sid, live.pid, rooms, data, live.offset))
        previous = None if unconditional else live.written
        with anyio.fail_after(self._timeout):
            await self._store.put(self._prefix + live.pid, value, ttl_ms, previous)
        live.written = value

    def _store_failed(self, exc: BaseException) -> None:
        self._fail("store_error", "-", f"{type(exc).__name__}: {exc}")

    # -- the task that keeps live sessions stored ---------------------------------------

    async def aclose(self) -> None:
        """Stop keeping sessions fresh (they stay in Redis until they expire)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self.refresh_every
        while True:
            with anyio.move_on_after(max(0.0, due - loop.time())):
                await self._wake.wait()
            self._wake.clear()
            if loop.time() >= due:
                due = loop.time() + self.refresh_every
                targets = set(self._live)
            else:
                targets = set(self._dirty)
            self._dirty.clear()
            keys = sorted(targets)
            for i in range(0, len(keys), 200):  # pipelined, 200 at a time
                results = await asyncio.gather(
                    *(self._refresh(key) for key in keys[i : i + 200]), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, Exception):
                        self._store_failed(result)

    async def _refresh(self, key: tuple[str, str]) -> None:
        live = self._live.get(key)
        if live is not None:
            await self._write(key[0], key[1], live, self._live_ttl)

    def stats(self) -> dict[str, int]:
        """Counters: sessions recovered, failures by reason, sessions kept."""
        return {
            "recovered_sessions": self.recovered,
            "recovery_failures": sum(self.failures.values()) - self.failures["store_error"],
            "recovery_store_errors": self.failures["store_error"],
            "recovery_sessions_live": len(self._live),
        }
