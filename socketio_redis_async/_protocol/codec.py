"""Bytes <-> plain data: msgpack as notepack.io (Node) writes it, and JSON.

Pure: no I/O. Broadcasts are msgpack; requests and responses are JSON, except BROADCAST
(7) and BROADCAST_ACK (9), which are msgpack. Receivers tell the two apart by the first
byte (``{`` means JSON).

Decoding never builds anything but plain data: dict, list, str, int, float, bool, None
and bytes, nested at most ``MAX_DEPTH`` levels, with map keys that JSON can encode (str,
int, float, bool, None), so that delivering it to clients cannot fail. Extension types
map as Node's notepack does: ext -1 (timestamp, notepack 3) becomes an ISO-8601 string
like JavaScript's ``Date.toJSON()``; ext 0 (ArrayBuffer, notepack 2) becomes bytes, and
its one-byte form ``d4 00 00`` (``undefined``) None.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import secrets
import string
from typing import Any, Final

import msgpack

from .._errors import MalformedMessage
from .checks import check_request_id

MAX_DEPTH: Final = 100
"""Messages nested deeper than this many lists and maps are dropped as malformed."""

_ALNUM: Final = string.ascii_letters + string.digits


def random_id(length: int) -> str:
    """A random alphanumeric id (server uids, request ids), opaque to every peer."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


# Bytes that can start a msgpack bin (c4-c6) or ext (c7-c9, d4-d8) value. A payload with
# none of them holds no bytes and no extension values, so the costly checks are skipped.
_BIN_OR_EXT: Final = re.compile(rb"[\xc4-\xc9\xd4-\xd8]")
_TIMESTAMPS: Final = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")  # ext -1 of 4, 8, 12 bytes
# Every byte except those that can start a msgpack map or array (80-9f, dc-df): deleting
# them leaves at most one byte per container, a cheap upper bound of the nesting depth.
_NOT_CONTAINER: Final = bytes(b for b in range(256) if not (0x80 <= b <= 0x9F or b >= 0xDC))
# A \uD800-\uDFFF escape: JSON can hold lone surrogates, which no str can be encoded with.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_KEY_TYPES: Final = frozenset({str, int, float, bool, type(None)})


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0:
        return None if data == b"\x00" else data
    raise MalformedMessage(f"unsupported msgpack extension type {code}")


def _iso(value: _dt.datetime) -> str:
    value = value.astimezone(_dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _dates_to_iso(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return _iso(value)
    if isinstance(value, list):
        return [_dates_to_iso(v) for v in value]
    if isinstance(value, dict):
        return {k: _dates_to_iso(v) for k, v in value.items()}
    return value


def check_plain(value: Any, keys: bool = True) -> bool:
    """Raise MalformedMessage if decoded ``value`` nests deeper than ``MAX_DEPTH``, or
    (``keys``) has a map key JSON cannot encode; return whether it holds bytes. Iterative,
    a level at a time: its cost is bounded by the size of ``value``."""
    level = [value] if type(value) is dict or type(value) is list else []
    holds_bytes = type(value) is bytes
    for _ in range(MAX_DEPTH):
        if not level:
            return holds_bytes
        below: list[Any] = []
        item: Any
        for item in level:
            if type(item) is dict:
                if keys and not _KEY_TYPES.issuperset(map(type, item)):
                    key = next(k for k in item if type(k) not in _KEY_TYPES)
                    raise MalformedMessage(f"a map key must be a string or number, not {key!r:.40}")
                item = item.values()
            for child in item:
                kind = type(child)
                if kind is dict or kind is list:
                    below.append(child)
                elif kind is bytes:
                    holds_bytes = True
        level = below
    if level:
        raise MalformedMessage(f"nested deeper than {MAX_DEPTH} levels")
    return holds_bytes


def unpack(payload: bytes) -> Any:
    """Decode msgpack into plain data, or raise MalformedMessage."""
    return unpack_marked(payload)[0]


def unpack_marked(payload: bytes) -> tuple[Any, bool]:
    """``unpack``, and whether the decoded value holds bytes."""
    try:
        value = msgpack.unpackb(
            payload, raw=False, strict_map_key=False, timestamp=3, ext_hook=_ext_hook
        )
    except MalformedMessage:
        raise
    except Exception as exc:
        raise MalformedMessage(f"invalid msgpack: {exc}") from None
    # Without bin or ext marker bytes (which a float's bytes may also hold) there are no
    # bytes, and every map key is a str, number, bool or None already.
    marked = _BIN_OR_EXT.search(payload) is not None
    holds_bytes = False
    if marked or len(payload.translate(None, _NOT_CONTAINER)) > MAX_DEPTH:
        holds_bytes = check_plain(value, keys=marked)
    if marked and any(marker in payload for marker in _TIMESTAMPS):
        value = _dates_to_iso(value)
    return value, holds_bytes


def pack(value: Any) -> bytes:
    """Encode plain data as msgpack (bytes as ``bin``), or raise TypeError."""
    try:
        return msgpack.packb(value, use_bin_type=True, datetime=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(
            f"cannot encode {value!r:.200} for Redis: {exc}; send only dict, list, tuple, "
            "str, int, float, bool, None and bytes"
        ) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        # What Node's JSON.stringify(Buffer) produces.
        return {"type": "Buffer", "data": list(bytes(value))}
    if isinstance(value, _dt.datetime):
        return _iso(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dump_json(value: Any) -> bytes:
    """Encode a request or response as compact JSON, the way Node's JSON.stringify does."""
    try:
        return json.dumps(value, separators=(",", ":"), default=_json_default).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot encode {value!r:.200} as JSON: {exc}") from None


def decode_request(payload: bytes) -> dict[str, Any]:
    """Decode a request or response: JSON when it starts with ``{``, msgpack otherwise."""
    if payload[:1] == b"{":
        try:
            value = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise MalformedMessage(f"invalid JSON: {exc}") from None
        if payload.count(b"[") + payload.count(b"{") > MAX_DEPTH:
            check_plain(value, keys=False)  # JSON keys are strings
        if _SURROGATE_ESCAPE.search(payload) is not None:
            try:  # a lone surrogate makes a str that cannot be encoded (channel names...)
                json.dumps(value, ensure_ascii=False).encode()
            except UnicodeEncodeError:
                raise MalformedMessage("a string holds a lone UTF-16 surrogate") from None
    else:
        value = unpack(payload)
    if not isinstance(value, dict):
        raise MalformedMessage("a request or response must be a map")
    check_request_id(value)
    return value
