"""The responders: answering the requests other servers (Python or Node) publish.

One method per request type, typed against ``LocalView``, a narrow view of this
server's sockets; they never see the adapter, so a fake view can drive them in tests.
Types 0, 1, 5 and 8 are always answered, even when empty, because requesters count
answers against NUMSUB.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol

from .._protocol import answers
from .._protocol.messages import Request, RequestType
from .._protocol.rooms import Room

Recipients = list[tuple[str, str]]
"""``(sid, eio_sid)`` pairs of local sockets."""


class LocalView(Protocol):
    """What answering a request needs from this server's sockets."""

    def recipients(self, nsp: str, rooms: Iterable[Room], excluded: Iterable[Room]) -> Recipients:
        """Local sockets in any of ``rooms`` (all if none) and in no ``excluded`` room."""

    def room_names(self, nsp: str) -> list[Room]:
        """Every local room of ``nsp``, socket-id rooms included."""

    def owner_of(self, sid: str, nsp: str) -> str | None:
        """The eio sid of local socket ``sid``, None if it is not local."""

    def describe(self, nsp: str, recipients: Recipients) -> list[dict[str, Any]]:
        """``{id, handshake, rooms, data}`` of each recipient."""

    def apply_rooms(
        self,
        nsp: str,
        join: bool,
        selector: Iterable[Room],
        excluded: Iterable[Room],
        rooms: list[Room],
    ) -> None:
        """Make the matching local sockets join or leave ``rooms``."""

    async def disconnect(self, nsp: str, targets: Recipients, close: bool) -> None:
        """Disconnect local sockets; ``close`` also closes their connection."""

    async def deliver_with_acks(
        self,
        nsp: str,
        data: list[Any],
        recipients: Recipients,
        callback: Callable[..., Any],
        expire_after: float,
    ) -> None:
        """Send with an ack id per recipient; forget the callbacks after ``expire_after`` s."""


Publish = Callable[[str, bytes, int], Awaitable[int]]
"""Publishes a payload on a channel, at most so many bytes."""
EncodeAnswer = Callable[[str, Request, dict[str, Any], int], tuple[str, bytes, "str | None"]]
"""``(nsp, request, answer, limit)`` -> ``(channel, payload, error if it was too large)``."""
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class Responders:
    """Answers the requests of one server, whatever its namespace."""

    def __init__(
        self,
        uid: Callable[[], str],
        local: LocalView,
        publish: Publish,
        spawn: Spawn,
        *,
        max_answer_size: int,
        is_own: Callable[[object], bool],
        handler_of: Callable[[str, str], Callable[..., Any] | None],
        ack_timeout: float,
        logger: logging.Logger,
        encode_answer: EncodeAnswer,
    ) -> None:
        """``encode_answer`` puts answers on the wire (the wire format's encoding)."""
        self._encode_answer = encode_answer
        self._uid = uid
        self._local = local
        self._publish = publish
        self._max_answer_size = max_answer_size
        self._spawn = spawn
        self._is_own = is_own
        self._handler_of = handler_of
        self._ack_timeout = ack_timeout
        self._logger = logger
        self._by_type: dict[RequestType, Callable[[str, Request], Awaitable[None]]] = {
            RequestType.SOCKETS: self._sockets,
            RequestType.ALL_ROOMS: self._all_rooms,
            RequestType.REMOTE_JOIN: self._rooms,
            RequestType.REMOTE_LEAVE: self._rooms,
            RequestType.REMOTE_DISCONNECT: self._disconnect,
            RequestType.REMOTE_FETCH: self._fetch,
            RequestType.SERVER_SIDE_EMIT: self._server_side_emit,
            RequestType.BROADCAST: self._broadcast,
        }

    async def respond(self, nsp: str, request: Request) -> None:
        """Answer or apply one validated request received on ``nsp``'s request channel."""
        await self._by_type[request.kind](nsp, request)

    async def _answer(self, nsp: str, request: Request, value: dict[str, Any]) -> None:
        """Publish an answer where its requester listens, within ``max_answer_size``."""
        limit = self._max_answer_size
        channel, payload, error = self._encode_answer(nsp, request, value, limit)
        if error is not None:
            self._logger.warning(
                "%s; sent an error answer instead (raise max_answer_size, and Redis' "
                "client-output-buffer-limit for pubsub, to allow larger answers)",
                error,
            )
        await self._publish(channel, payload, limit)

    def _foreign(self, request: Request) -> bool:
        """True unless this server sent the request itself."""
        return request.uid != self._uid() and not self._is_own(request.request_id)

    async def _reply(self, nsp: str, request: Request, **fields: Any) -> None:
        await self._answer(nsp, request, answers.answer(request.request_id, self._uid(), **fields))

    async def _sockets(self, nsp: str, request: Request) -> None:
        """SOCKETS (0): the sids of local sockets in ``rooms`` (all if empty)."""
        if self._foreign(request):
            recipients = self._local.recipients(nsp, request.rooms or (), ())
            await self._reply(nsp, request, sockets=[sid for sid, _ in recipients])

    async def _all_rooms(self, nsp: str, request: Request) -> None:
        """ALL_ROOMS (1): every local room name, socket-id rooms included."""
        if self._foreign(request):
            await self._reply(nsp, request, rooms=self._local.room_names(nsp))

    async def _rooms(self, nsp: str, request: Request) -> None:
        """REMOTE_JOIN (2) / REMOTE_LEAVE (3), selector form or single-socket form."""
        join = request.kind == RequestType.REMOTE_JOIN
        assert request.rooms is not None
        if request.sid is not None:  # 6.x/7.x form {requestId, sid, room}: its server answers
            if self._local.owner_of(request.sid, nsp) is not None:
                self._local.apply_rooms(nsp, join, [request.sid], (), request.rooms)
                await self._reply(nsp, request)
        elif request.uid != self._uid():  # this server applied its own before publishing
            self._local.apply_rooms(
                nsp, join, request.selector or (), request.excluded or (), request.rooms
            )

    async def _disconnect(self, nsp: str, request: Request) -> None:
        """REMOTE_DISCONNECT (4), selector form or single-socket form."""
        if request.sid is not None:
            eio_sid = self._local.owner_of(request.sid, nsp)
            if eio_sid is None:
                return
            await self._reply(nsp, request)
            targets = [(request.sid, eio_sid)]
        elif request.uid == self._uid():
            return
        else:
            targets = self._local.recipients(nsp, request.selector or (), request.excluded or ())
        if targets:
            # The app's disconnect handler runs in a task of its own: if it asks the cluster
            # something, the answers it waits for come through this listener.
            self._spawn(self._local.disconnect(nsp, targets, request.close))

    async def _fetch(self, nsp: str, request: Request) -> None:
        """REMOTE_FETCH (5): ``{id, handshake, rooms, data}`` of the matching local sockets."""
        if self._foreign(request):
            recipients = self._local.recipients(nsp, request.selector or (), request.excluded or ())
            await self._reply(nsp, request, sockets=self._local.describe(nsp, recipients))

    async def _server_side_emit(self, nsp: str, request: Request) -> None:
        """SERVER_SIDE_EMIT (6): run the handler; with a requestId, answer with its result."""
        if request.uid == self._uid():
            return
        assert request.data is not None
        event, args = request.data[0], request.data[1:]
        handler = self._handler_of(nsp, event)
        if handler is not None:
            # User code runs in a task of its own, so a handler that asks the cluster
            # something (which needs this listener to read the answers) cannot deadlock it.
            self._spawn(self._run_handler(nsp, request, event, handler, args))

    async def _run_handler(
        self, nsp: str, request: Request, event: str, handler: Callable[..., Any], args: list[Any]
    ) -> None:
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            self._logger.exception("server-side handler for %r raised; no answer is sent", event)
            return
        if request.request_id is not None:
            reply = answers.server_side_answer(request.request_id, self._uid(), result)
            await self._answer(nsp, request, reply)

    async def _broadcast(self, nsp: str, request: Request) -> None:
        """BROADCAST (7): deliver with acks; report the client count (8), then each ack (9)."""
        request_id = request.request_id
        if request.uid == self._uid() or self._is_own(request_id) or request.nsp != nsp:
            return
        assert request.data is not None and request_id is not None  # parse_request checks
        recipients = self._local.recipients(nsp, request.selector or (), request.excluded or ())
        count = answers.client_count_answer(request_id, self._uid(), len(recipients))
        await self._answer(nsp, request, count)
        if not recipients:
            return

        async def ack(*args: Any) -> None:
            reply = answers.ack_answer(request_id, self._uid(), args[0] if args else None)
            try:
                await self._answer(nsp, request, reply)
            except Exception as exc:
                self._logger.error("could not send an ack back to server %s: %s", request.uid, exc)

        # The requester stops waiting after its timeout; a client that never acks must not
        # keep its callback here until it disconnects.
        wait = _ack_wait(request.flags or {}, self._ack_timeout)
        await self._local.deliver_with_acks(nsp, request.data, recipients, ack, wait)


def _ack_wait(flags: dict[str, Any], default: float) -> float:
    """Seconds the requester waits for acks: ``flags.timeout`` (ms), else ``default``."""
    timeout = flags.get("timeout")
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and 0 < timeout < 1e12:
        return float(timeout) / 1000
    return default
