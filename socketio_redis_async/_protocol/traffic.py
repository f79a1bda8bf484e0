"""Readable summaries of the messages on a cluster's channels (the CLI's ``monitor``).

Pure: no I/O. Each summary never raises: what does not decode is shown as malformed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .._errors import MalformedMessage
from . import codec, messages, sharded, streams

REQUEST_NAMES = {
    0: "SOCKETS",
    1: "ALL_ROOMS",
    2: "REMOTE_JOIN",
    3: "REMOTE_LEAVE",
    4: "REMOTE_DISCONNECT",
    5: "REMOTE_FETCH",
    6: "SERVER_SIDE_EMIT",
    7: "BROADCAST",
    8: "BROADCAST_CLIENT_COUNT",
    9: "BROADCAST_ACK",
}


def _preview(value: Any, limit: int = 80) -> str:
    text = json.dumps(
        value, default=lambda v: f"<{len(v)} bytes>" if isinstance(v, bytes) else str(v)
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scalar(value: Any) -> Any:
    """A field shown as it is if JSON can hold it as one value, else as a short preview."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    return _preview(value, 40)


def describe(key: str, channel: str, payload: bytes) -> dict[str, Any]:
    """A readable summary of one message seen on the cluster's channels.

    Never raises: a message that does not decode, or that cannot be shown, is summarised
    as ``kind="malformed"`` with the reason, so a monitor keeps going.
    """
    entry: dict[str, Any] = {"channel": channel}
    try:
        if channel.startswith((f"{key}-request#", f"{key}-response#")):
            msg = codec.decode_request(payload)
            kind = "request" if channel.startswith(f"{key}-request#") else "response"
            kind_code = msg.get("type")
            entry.update(
                kind=kind,
                uid=_scalar(msg.get("uid")),
                type=REQUEST_NAMES.get(kind_code, kind_code)
                if isinstance(kind_code, int)
                else _scalar(kind_code),
                request_id=msg.get("requestId"),
            )
            data = msg.get("data")
            if isinstance(data, list) and data and kind == "request":
                entry.update(event=_scalar(data[0]), args=_preview(data[1:]))
        else:
            b = messages.decode_broadcast(payload)
            entry.update(
                kind="broadcast",
                uid=b.uid,
                nsp=b.nsp,
                event=b.data[0],
                rooms=b.rooms,
                except_=b.except_rooms,
                args=_preview(b.data[1:]),
            )
    except MalformedMessage as exc:
        entry = {"channel": channel, "kind": "malformed", "error": str(exc)}
    except Exception as exc:  # a monitor shows what it cannot read and keeps going
        entry = {"channel": channel, "kind": "malformed", "error": f"{exc!r:.200}"}
    return entry


def describe_sharded(channel: str, payload: bytes) -> dict[str, Any]:
    """``describe`` for a message of the sharded protocol; never raises."""
    return _describe_cluster_message(channel, lambda: sharded.decode(payload))


def describe_entry(stream: str, entry_id: str, fields: list[bytes]) -> dict[str, Any]:
    """``describe`` for a stream entry of the streams protocol; never raises."""
    entry = _describe_cluster_message(stream, lambda: streams.decode_entry(fields))
    return {**entry, "offset": entry_id}


def _describe_cluster_message(
    channel: str, decode: Callable[[], sharded.Message]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"channel": channel}
    try:
        msg = decode()
        data = msg.data
        known = msg.kind in sharded.MessageType.__members__.values()
        if msg.kind in sharded.ANSWERS:
            kind = "response"
        else:
            is_broadcast = msg.kind == sharded.MessageType.BROADCAST and "requestId" not in data
            kind = "broadcast" if is_broadcast else "request"
        entry.update(
            kind=kind,
            uid=_scalar(msg.uid),
            type=sharded.MessageType(msg.kind).name if known else msg.kind,
            request_id=_scalar(data.get("requestId")),
        )
        packet = data.get("packet")
        events = packet.get("data") if isinstance(packet, dict) else packet
        if isinstance(events, list) and events and kind != "response":
            entry.update(event=_scalar(events[0]), args=_preview(events[1:]))
        opts = data.get("opts")
        if isinstance(opts, dict):
            entry.update(rooms=_scalar(opts.get("rooms")), except_=_scalar(opts.get("except")))
    except MalformedMessage as exc:
        entry = {"channel": channel, "kind": "malformed", "error": str(exc)}
    except Exception as exc:  # a monitor shows what it cannot read and keeps going
        entry = {"channel": channel, "kind": "malformed", "error": f"{exc!r:.200}"}
    return entry
