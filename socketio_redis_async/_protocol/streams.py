"""Node's Redis Streams adapter protocol (@socket.io/redis-streams-adapter 0.3.1).

Pure: no I/O. Messages are ClusterAdapter messages ``{uid, nsp, type, data}`` (see
``sharded``), carried two ways:

* **the stream** (XADD): broadcasts without acks (3), SOCKETS_JOIN (4), SOCKETS_LEAVE (5)
  and DISCONNECT_SOCKETS (6), and everything an emitter sends. An entry's fields are
  ``uid, nsp, type, data`` in that order, all strings: ``type`` in decimal, ``data`` JSON,
  or base64(msgpack) when the type may carry bytes, does, and ``only_plaintext`` is off.
* **pub/sub** (PUBLISH, or SPUBLISH): broadcasts with acks, FETCH_SOCKETS (7),
  SERVER_SIDE_EMIT (9) on ``K#N#``, and every answer on ``K#N#<uid>#``; the payload is
  always the msgpack of the whole message (numeric ``type``).

Stream names: ``stream_name`` when ``stream_count`` is 1, else
``stream_name-<hashCode(nsp) % stream_count>`` with Java's ``String.hashCode`` (int32,
UTF-16 code units) and JavaScript's ``%`` (the sign of the dividend): a namespace whose
hash is negative writes to ``socket.io--3``, a stream Node 0.3.1 servers never read.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any, Final

from .._errors import MalformedMessage
from . import codec, sharded
from .sharded import MessageType

STREAM_TYPES: Final = frozenset(
    {
        MessageType.BROADCAST,
        MessageType.SOCKETS_JOIN,
        MessageType.SOCKETS_LEAVE,
        MessageType.DISCONNECT_SOCKETS,
    }
)
_MAY_HOLD_BYTES: Final = frozenset({3, 8, 9, 10, 12})
_FIELDS: Final = (b"uid", b"nsp", b"type", b"data")
ENTRY_ID: Final = re.compile(rb"^[0-9]+-[0-9]+$")
"""What Node accepts as an offset (``XRANGE`` ids ``<ms>-<seq>``)."""


def hash_code(text: str) -> int:
    """Java's ``String.hashCode`` over UTF-16 code units, as a signed 32-bit integer."""
    h = 0
    units = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(units), 2):
        h = (h * 31 + (units[i] | units[i + 1] << 8)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def stream_for(name: str, count: int, nsp: str) -> str:
    """The stream a namespace's entries go to, exactly as Node 0.3.1 names it."""
    if count == 1:
        return name
    h = hash_code(nsp)
    index = abs(h) % count * (-1 if h < 0 else 1)  # JavaScript's %: the dividend's sign
    return f"{name}-{index}"


def all_streams(name: str, count: int) -> list[str]:
    """Every stream a namespace may be written to: ``-0 .. -(n-1)`` and, for the
    namespaces whose hash is negative, ``--1 .. --(n-1)`` (read here, not by Node)."""
    if count == 1:
        return [name]
    return [f"{name}-{i}" for i in range(count)] + [f"{name}--{i}" for i in range(1, count)]


def goes_to_stream(uid: str, kind: int, data: dict[str, Any]) -> bool:
    """Node's ``!isEphemeral``: a broadcast without acks, a join, a leave or a disconnect,
    and everything an emitter sends."""
    if uid == "emitter":
        return True
    return kind in STREAM_TYPES and not (kind == MessageType.BROADCAST and "requestId" in data)


def entry_fields(
    uid: str, nsp: str, kind: int, data: dict[str, Any], only_plaintext: bool
) -> tuple[bytes, ...]:
    """An XADD entry's field/value list (``uid nsp type data``)."""
    if kind in _MAY_HOLD_BYTES and not only_plaintext and sharded.has_bytes(data):
        body = base64.b64encode(codec.pack(data))
    else:
        body = codec.dump_json(data)
    return (b"uid", uid.encode(), b"nsp", nsp.encode(), b"type", b"%d" % kind, b"data", body)


def encode_message(uid: str, nsp: str, kind: int, data: dict[str, Any]) -> bytes:
    """A pub/sub payload: always msgpack, with a numeric type."""
    return codec.pack({"uid": uid, "nsp": nsp, "type": kind, "data": data})


def decode_entry(fields: Sequence[bytes]) -> sharded.Message:
    """A stream entry's flat ``[field, value, ...]`` as a validated message, or
    MalformedMessage. Unknown fields are ignored; ``data`` is optional, as in Node."""
    if len(fields) % 2:
        raise MalformedMessage("a stream entry has an odd number of fields")
    values: dict[bytes, bytes] = {}
    for i in range(0, len(fields), 2):
        if fields[i] in _FIELDS:
            values[fields[i]] = fields[i + 1]
    try:
        uid, nsp = values[b"uid"].decode(), values[b"nsp"].decode()
        kind = int(values[b"type"])
    except KeyError as exc:
        raise MalformedMessage(f"a stream entry needs a {exc.args[0].decode()} field") from None
    except (UnicodeDecodeError, ValueError):
        raise MalformedMessage("a stream entry's uid, nsp and type must be text") from None
    body, binary = values.get(b"data"), False
    if body is None:
        data: Any = {}
    elif body[:1] == b"{":
        data = codec.decode_request(body)
    else:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedMessage("a stream entry's data is neither JSON nor base64") from None
        data, binary = codec.unpack_marked(raw)
    if not isinstance(data, dict):
        raise MalformedMessage("a stream entry's data must be a map")
    return sharded.Message(uid, nsp, kind, data, binary)


def check_offset(offset: Any) -> str:
    """A stream entry id given as an offset (``<ms>-<seq>``), or ValueError."""
    if not isinstance(offset, str) or not ENTRY_ID.match(offset.encode()):
        raise ValueError(f"an offset is a stream entry id like '1700000000000-0', not {offset!r}")
    return offset
