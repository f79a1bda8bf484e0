"""The responders and the recipient selection, without Redis: a fake ``LocalView`` and a
fake publisher drive the responders; a fake manager's rooms drive ``LocalSockets``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from types import SimpleNamespace
from typing import Any, cast

import anyio
import pytest

from socketio_redis_async._cluster.responders import Recipients, Responders
from socketio_redis_async._local.delivery import Delivery
from socketio_redis_async._local.host import Host
from socketio_redis_async._local.sockets import LocalSockets
from socketio_redis_async._protocol import codec
from socketio_redis_async._protocol.channels import NamespaceChannels
from socketio_redis_async._protocol.messages import parse_request
from socketio_redis_async._protocol.rooms import Room
from socketio_redis_async._protocol.wire import ClassicWire

pytestmark = [pytest.mark.anyio, pytest.mark.unit]  # unit: no Redis, no subprocess

ROOMS = {
    "/": {
        None: {"s1": "e1", "s2": "e2", "s3": "e3"},
        "s1": {"s1": "e1"},  # python-socketio puts every socket in its own sid room
        "s2": {"s2": "e2"},
        "s3": {"s3": "e3"},
        "red": {"s1": "e1", "s2": "e2"},
        1: {"s3": "e3"},
    }
}


HOST = cast(Host, SimpleNamespace(rooms=ROOMS, server=None))
WIRE = ClassicWire()


class FakeView:
    """A LocalView over fixed rooms that records what the responders ask it to do."""

    def __init__(self) -> None:
        self.local = LocalSockets(
            HOST,
            Delivery(HOST, None, lambda coro: coro.close(), logging.getLogger("t")),
            redact_headers=frozenset(),
            redact_query=frozenset(),
            close_timeout=1,
        )
        self.calls: list[tuple[Any, ...]] = []

    def recipients(self, nsp: str, rooms: Iterable[Room], excluded: Iterable[Room]) -> Recipients:
        return self.local.recipients(nsp, rooms, excluded)

    def room_names(self, nsp: str) -> list[Room]:
        return self.local.room_names(nsp)

    def owner_of(self, sid: str, nsp: str) -> str | None:
        return self.local.owner_of(sid, nsp)

    def describe(self, nsp: str, recipients: Recipients) -> list[dict[str, Any]]:
        return [{"id": sid} for sid, _ in recipients]

    def apply_rooms(
        self, nsp: str, join: bool, selector: Any, excluded: Any, rooms: list[Room]
    ) -> None:
        self.calls.append(("rooms", join, list(selector), list(excluded), rooms))

    async def disconnect(self, nsp: str, targets: Recipients, close: bool) -> None:
        self.calls.append(("disconnect", targets, close))

    async def deliver_with_acks(
        self,
        nsp: str,
        data: list[Any],
        recipients: Recipients,
        callback: Callable[..., Any],
        expire_after: float,
    ) -> None:
        self.calls.append(("acks", data, recipients, expire_after))
        await callback("ack!")


class Harness:
    """Responders of server ``me`` with a fake view, publisher and task spawner."""

    def __init__(self, handlers: dict[str, Callable[..., Any]] | None = None) -> None:
        self.view = FakeView()
        self.published: list[tuple[str, Any]] = []
        self.spawned: list[Coroutine[Any, Any, Any]] = []
        self.responders = Responders(
            lambda: "me",
            self.view,
            self.publish,
            self.spawned.append,
            max_answer_size=10**6,
            is_own=lambda request_id: request_id == "mine",
            handler_of=lambda nsp, event: (handlers or {}).get(event),
            ack_timeout=60,
            logger=logging.getLogger("t"),
            encode_answer=lambda nsp, request, value, limit: WIRE.encode_answer(
                "me", NamespaceChannels.build("k", nsp), request, value, limit
            ),
        )

    async def publish(self, channel: str, payload: bytes, limit: int) -> int:
        self.published.append((channel, codec.decode_request(payload)))
        return 1

    async def respond(self, raw: dict[str, Any]) -> None:
        request = parse_request(raw)
        assert request is not None
        await self.responders.respond("/", request)
        for coro in self.spawned:
            await coro
        self.spawned.clear()


async def test_sockets_and_rooms_are_answered_on_the_requesters_channel():
    """SOCKETS and ALL_ROOMS answer with the local view's sids and rooms, signed, on the
    requester's own channel; a request this server sent is not answered."""
    h = Harness()
    await h.respond({"uid": "other", "requestId": "r1", "type": 0, "rooms": ["red"]})
    await h.respond({"uid": "other", "requestId": "r2", "type": 1})
    await h.respond({"uid": "me", "requestId": "r3", "type": 1})
    await h.respond({"uid": "x", "requestId": "mine", "type": 1})
    assert h.published == [
        ("k-response#/#other#", {"requestId": "r1", "sockets": ["s1", "s2"], "uid": "me"}),
        (
            "k-response#/#other#",
            {"requestId": "r2", "rooms": ["s1", "s2", "s3", "red", 1], "uid": "me"},
        ),
    ]


async def test_joins_apply_locally_and_single_socket_forms_are_answered_by_the_owner():
    """The selector form applies rooms without an answer; the 6.x/7.x single-socket form
    is applied and answered only by the server that holds the socket."""
    h = Harness()
    await h.respond(
        {"uid": "o", "type": 2, "opts": {"rooms": ["red"], "except": [1]}, "rooms": ["blue"]}
    )
    await h.respond({"uid": "o", "requestId": "r", "type": 3, "sid": "s9", "room": "red"})
    await h.respond({"uid": "o", "requestId": "r", "type": 3, "sid": "s1", "room": "red"})
    await h.respond({"uid": "me", "type": 2, "opts": {}, "rooms": ["x"]})
    assert h.view.calls == [
        ("rooms", True, ["red"], [1], ["blue"]),
        ("rooms", False, ["s1"], [], ["red"]),
    ]
    assert h.published == [("k-response#/#o#", {"requestId": "r", "uid": "me"})]


async def test_disconnects_run_in_owned_tasks():
    """A disconnect request hands the matching local sockets to a spawned task, never
    inline in the listener."""
    h = Harness()
    request = parse_request({"uid": "o", "type": 4, "opts": {"rooms": [1]}, "close": True})
    assert request is not None
    await h.responders.respond("/", request)
    assert h.view.calls == [] and len(h.spawned) == 1
    await h.spawned.pop()
    assert h.view.calls == [("disconnect", [("s3", "e3")], True)]


async def test_broadcast_with_acks_reports_the_count_then_each_ack():
    """BROADCAST (7) answers the client count, delivers with acks that expire after the
    requester's timeout, and sends each ack back."""
    h = Harness()
    await h.respond(
        {
            "uid": "o",
            "requestId": "b1",
            "type": 7,
            "packet": {"type": 2, "data": ["ev", 1], "nsp": "/"},
            "opts": {"rooms": ["red"], "except": [], "flags": {"timeout": 2500}},
        }
    )
    assert h.view.calls == [("acks", ["ev", 1], [("s1", "e1"), ("s2", "e2")], 2.5)]
    assert h.published[0] == (
        "k-response#/#o#",
        {"type": 8, "requestId": "b1", "clientCount": 2, "uid": "me"},
    )
    assert h.published[1] == (
        "k-response#/#o#",
        {"type": 9, "requestId": "b1", "packet": "ack!", "uid": "me"},
    )


async def test_server_side_emits_run_the_handler_and_answer_its_result():
    """SERVER_SIDE_EMIT runs the registered handler in a task; with a request id its
    result goes back on the shared response channel, as Node sends it."""
    seen: list[Any] = []

    async def handler(*args: Any) -> str:
        seen.append(args)
        return "pong"

    h = Harness({"ping": handler})
    await h.respond({"uid": "o", "type": 6, "data": ["ping", 1]})
    await h.respond({"uid": "o", "requestId": "q", "type": 6, "data": ["ping", 2]})
    await h.respond({"uid": "o", "requestId": "q", "type": 6, "data": ["unknown"]})
    assert seen == [(1,), (2,)]
    assert h.published == [
        ("k-response#/#", {"type": 6, "requestId": "q", "data": "pong", "uid": "me"})
    ]


def test_recipients_are_the_union_of_rooms_minus_the_excluded():
    """Recipient selection: all sockets, one room, several rooms, minus except rooms."""
    local = FakeView().local
    assert local.recipients("/", [], []) == [("s1", "e1"), ("s2", "e2"), ("s3", "e3")]
    assert local.recipients("/", ["red"], []) == [("s1", "e1"), ("s2", "e2")]
    assert sorted(local.recipients("/", ["red", 1], ["s2"])) == [("s1", "e1"), ("s3", "e3")]
    assert local.recipients("/", [], ["red"]) == [("s3", "e3")]
    assert local.recipients("/", ["nobody"], []) == []
    assert local.recipients("/none", [], []) == []
    assert local.owner_of("s1", "/") == "e1" and local.owner_of("zz", "/") is None
    assert local.only_local_sid("/", ["s1"]) and not local.only_local_sid("/", ["red"])
    assert local.has_room("/", "1") and not local.has_room("/", "01")


async def test_a_fake_view_satisfies_the_protocol_in_time():
    """The responders never wait on anything but the view and the publisher."""
    h = Harness()
    with anyio.fail_after(5):
        await h.respond({"uid": "o", "requestId": "f", "type": 5, "opts": {"rooms": ["red"]}})
    assert h.published == [
        (
            "k-response#/#o#",
            {"requestId": "f", "sockets": [{"id": "s1"}, {"id": "s2"}], "uid": "me"},
        )
    ]
