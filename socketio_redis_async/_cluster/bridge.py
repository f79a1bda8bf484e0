"""Bridge mode: also speak python-socketio ``AsyncRedisManager``'s channel while a fleet
rolls over from it (the ``bridge_channel`` option).

Old servers publish JSON dicts on one channel (``{"method": "emit" | "callback" |
"disconnect" | "enter_room" | "leave_room" | "close_room", "host_id": ..., ...}``);
a bridged adapter applies them to its local sockets, and publishes the same messages for
what it does itself, so old servers deliver them too. Messages a bridged adapter publishes
carry ``BRIDGED`` (python-socketio ignores unknown fields): every bridged adapter drops
them, since it gets the same operation on its own channels already.

The encode/decode functions are pure; :class:`Bridge` is the part the adapter calls.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from socketio.packet import Packet

from .._errors import MalformedMessage
from .._protocol import codec
from .._protocol.rooms import Room, wire_room

if TYPE_CHECKING:
    from .._local.host import Host
    from .._local.sockets import LocalSockets

BRIDGED = "socketio_redis_async"
"""Field marking a message published by a bridged adapter (its value: the sender's uid)."""

METHODS = frozenset({"emit", "callback", "disconnect", "enter_room", "leave_room", "close_room"})


def check_channel(channel: Any) -> str | None:
    """Validate the ``bridge_channel`` option."""
    if channel is None:
        return None
    if not isinstance(channel, str) or not channel or any(c in channel for c in "*?[]"):
        raise ValueError(
            "bridge_channel must be the non-empty 'channel' of the AsyncRedisManager servers "
            f"being replaced (python-socketio's default is 'socketio'), not {channel!r:.60}"
        )
    return channel


def encode(message: dict[str, Any], uid: str) -> bytes:
    """A python-socketio message from this server, marked as bridged; ``host_id`` is
    ``uid`` unless the message names one (a ``callback`` names its addressee)."""
    return codec.dump_json({"host_id": uid, **message, BRIDGED: uid})


def emit_message(
    nsp: str, args: list[Any], rooms: list[Room], skip: list[Room], callback: Any = None
) -> dict[str, Any]:
    """AsyncPubSubManager's ``emit`` message for ``emit(event, *args)`` (``args[0]`` is the
    event name); bytes travel as python-socketio's placeholders and base64 attachments."""
    event, data = args[0], list(args[1:])
    binary = Packet.data_is_binary(data)
    if binary:
        data, attachments = Packet.deconstruct_binary(data)
        data = [data, *(base64.b64encode(a).decode() for a in attachments)]
    room: Any = rooms[0] if len(rooms) == 1 else (rooms or None)
    skip_sid: Any = skip[0] if len(skip) == 1 else (skip or None)
    return {
        "method": "emit",
        "event": event,
        "data": data,
        "binary": binary,
        "namespace": nsp,
        "room": room,
        "skip_sid": skip_sid,
        "callback": callback,
    }


def decode(payload: bytes) -> dict[str, Any] | None:
    """A validated message from an old server; None for a bridged one (already seen).

    Raises MalformedMessage for anything else. The size was checked by the caller.
    """
    if payload[:1] != b"{":  # python-socketio < 5.14 sent pickle: never unpickled
        raise MalformedMessage("not a JSON object")
    msg = codec.decode_request(payload)
    if BRIDGED in msg:
        return None
    method = msg.get("method")
    if method not in METHODS:
        raise MalformedMessage(f"unknown method {method!r:.40}")
    nsp = msg.get("namespace") or "/"
    if not isinstance(nsp, str) or not nsp.startswith("/"):
        raise MalformedMessage(f"not a namespace: {nsp!r:.40}")
    msg["namespace"] = nsp
    if not isinstance(msg.get("host_id"), str):
        raise MalformedMessage("host_id must be a string")
    needs_sid = method in ("callback", "disconnect", "enter_room", "leave_room")
    if needs_sid and not isinstance(msg.get("sid"), str):
        raise MalformedMessage("sid must be a string")
    if method in ("enter_room", "leave_room", "close_room"):
        msg["room"] = wire_room(msg.get("room"))
    if method == "callback":
        if isinstance(msg.get("id"), bool) or not isinstance(msg.get("id"), int):
            raise MalformedMessage("a callback id must be an integer")
        if not isinstance(msg.get("args"), list):
            raise MalformedMessage("callback args must be a list")
    if method == "emit":
        _check_emit(msg)
    return msg


def _rooms(value: Any) -> list[Room]:
    if value is None:
        return []
    return [wire_room(r) for r in value] if isinstance(value, list) else [wire_room(value)]


def _check_emit(msg: dict[str, Any]) -> None:
    event = msg.get("event")
    if not isinstance(event, str):
        raise MalformedMessage("an emit's event must be a string")
    msg["rooms"] = _rooms(msg.get("room"))
    msg["skip"] = _rooms(msg.get("skip_sid"))
    data = msg.get("data")
    if msg.get("binary"):
        if not isinstance(data, list) or not data or not isinstance(data[0], list):
            raise MalformedMessage("binary data must be [args, attachment...]")
        try:
            attachments = [base64.b64decode(a, validate=True) for a in data[1:]]
        except (TypeError, ValueError, binascii.Error):
            raise MalformedMessage("a binary attachment is not base64") from None
        _check_placeholders(data[0], len(attachments))
        data = Packet.reconstruct_binary(data[0], attachments)
    elif not isinstance(data, list):
        data = [data]  # python-socketio 5.14 sent a single argument unwrapped
    msg["args"] = [event, *data]
    callback = msg.get("callback")
    if callback is not None:
        if (
            not isinstance(callback, list)
            or len(callback) != 3
            or isinstance(callback[2], bool)
            or not isinstance(callback[2], int)
        ):
            raise MalformedMessage("callback must be [room, namespace, id]")
        wire_room(callback[0])


def _check_placeholders(value: Any, count: int) -> None:
    """Every ``{"_placeholder": true, "num": n}`` names an attachment (depth was checked)."""
    level = [value]
    while level:
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict) and item.get("_placeholder") and "num" in item:
                num = item["num"]
                if isinstance(num, bool) or not isinstance(num, int) or not 0 <= num < count:
                    raise MalformedMessage(f"a binary placeholder names no attachment: {num!r:.20}")
                continue
            below.extend(c for c in children if isinstance(c, (dict, list)))
        level = below


class Bridge:
    """Applies an old server's messages to local sockets and publishes ours for them."""

    def __init__(
        self,
        manager: Host,
        local: LocalSockets,
        publish: Callable[[str, bytes], Awaitable[int]],
        uid: Callable[[], str],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        ack_timeout: float,
        channel: str,
        logger: logging.Logger,
    ) -> None:
        self._manager = manager
        self._local = local
        self._publish = publish
        self._uid = uid
        self._spawn = spawn
        self._ack_timeout = ack_timeout
        self.channel = channel
        self.logger = logger

    async def publish(self, message: dict[str, Any]) -> None:
        """Publish a python-socketio message on the bridge channel (errors reach the caller)."""
        await self._publish(self.channel, encode(message, self._uid()))

    async def on_message(self, payload: bytes) -> None:
        msg = decode(payload)
        if msg is None:
            return
        manager, nsp, method, uid = self._manager, msg["namespace"], msg["method"], self._uid()
        if method == "callback":
            if msg["host_id"] == uid:
                # The app's callback runs in a task the adapter owns, not in the listener.
                self._spawn(manager.trigger_callback(msg["sid"], msg["id"], msg["args"]))
            return
        if msg["host_id"] == uid or nsp not in manager.rooms:
            return
        if method == "emit":
            await self._emit(msg)
        elif method == "close_room":
            if not manager.is_sid_room(nsp, msg["room"]):
                manager.basic_close_room(msg["room"], nsp)
        elif self._local.is_local(msg["sid"], nsp):
            if method == "disconnect":
                await manager.server.disconnect(msg["sid"], namespace=nsp, ignore_queue=True)
            elif method == "enter_room":
                manager.basic_enter_room(msg["sid"], nsp, msg["room"])
            elif msg["room"] != msg["sid"]:
                manager.basic_leave_room(msg["sid"], nsp, msg["room"])

    async def _emit(self, msg: dict[str, Any]) -> None:
        nsp = msg["namespace"]
        recipients = self._local.recipients(nsp, msg["rooms"], msg["skip"])
        callback = msg.get("callback")
        if callback is None:
            await self._local.delivery.deliver(nsp, msg["args"], recipients)
            return
        origin, (room, cb_nsp, cb_id) = msg["host_id"], callback

        async def answer(*args: Any) -> None:
            reply = {"method": "callback", "host_id": origin, "sid": room}
            reply.update(namespace=cb_nsp, id=cb_id, args=list(args))
            try:
                await self.publish(reply)
            except Exception as exc:  # the client's ack is lost; say so
                self.logger.warning("could not return an ack to server %s: %s", origin, exc)

        await self._local.delivery.deliver_with_acks(
            nsp, msg["args"], recipients, answer, self._ack_timeout
        )
