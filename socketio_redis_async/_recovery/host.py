"""The two places recovery reaches into python-socketio, checked when the adapter is
attached (``set_server``), never at the first reconnect.

* The CONNECT answer is built inside python-socketio's private ``_handle_connect`` as
  ``packet_class(CONNECT, {'sid': sid}, namespace=...)``. The adapter swaps the server's
  ``packet_class`` (the class behind the public ``serializer=`` option) for a subclass
  that adds the socket's ``pid`` to that one packet, which is what the client needs.
* CONNECT and DISCONNECT packets are seen through Engine.IO's public ``message`` handler
  (``_local.connects``).

Both were verified on the versions in ``VERIFIED``; on any other version, turning
recovery on raises at ``set_server`` rather than failing silently later.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from socketio import packet

VERIFIED = {"python-socketio": ((5, 18), (5, 19)), "python-engineio": ((4, 12), (4, 16))}
"""Distribution -> [lowest, highest) (major, minor) the hooks were verified on."""

PidOf = Callable[[str, str], "str | None"]
"""(namespace, sid) -> the socket's pid."""


def _release(text: str) -> tuple[int, int]:
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)


def check_versions(installed: Callable[[str], str] = version) -> None:
    """RuntimeError unless the installed python-socketio/python-engineio are verified."""
    for name, (low, high) in VERIFIED.items():
        found = installed(name)
        if not low <= _release(found) < high:
            raise RuntimeError(
                f"connection_state_recovery hooks into {name}, and was verified on "
                f"{low[0]}.{low[1]}.x to {high[0]}.{high[1] - 1}.x, not {found}; install a "
                f"verified version (pip install '{name}>={low[0]}.{low[1]},<{high[0]}."
                f"{high[1]}') or turn recovery off"
            )


def check(server: Any, pid_of: PidOf) -> None:
    """Check the versions and the server (RuntimeError), then add pids to its CONNECTs."""
    check_versions()
    check_server(server)
    add_pids(server, pid_of)


def check_server(server: Any) -> None:
    """RuntimeError if this server does not have the shape the hooks rely on."""
    eio = getattr(server, "eio", None)
    handler = getattr(eio, "handlers", {}).get("message")
    packet_class = getattr(server, "packet_class", None)
    if not (
        inspect.iscoroutinefunction(handler)
        and isinstance(packet_class, type)
        and issubclass(packet_class, packet.Packet)
        and inspect.iscoroutinefunction(getattr(server, "_handle_connect", None))
    ):
        raise RuntimeError(
            "connection_state_recovery needs a socketio.AsyncServer with its own Engine.IO "
            "server and a socketio.packet.Packet serializer"
        )


def add_pids(server: Any, pid_of: PidOf) -> None:
    """Make the server's CONNECT answers carry each socket's ``pid``."""
    base = server.packet_class
    if getattr(base, "_adds_pids", False):
        return

    class PidPacket(base):  # type: ignore[misc, valid-type]
        _adds_pids = True
        plain = base  # the class every other packet is (the fast text path checks it)

        def __init__(
            self, packet_type: int = packet.EVENT, data: Any = None, *args: Any, **kw: Any
        ):
            if (
                packet_type == packet.CONNECT
                and kw.get("encoded_packet") is None
                and isinstance(data, dict)
                and list(data) == ["sid"]
            ):
                pid = pid_of(kw.get("namespace") or "/", data["sid"])
                if pid is not None:
                    data = {"sid": data["sid"], "pid": pid}
            super().__init__(packet_type, data, *args, **kw)

    PidPacket.__name__ = PidPacket.__qualname__ = f"PidPacket[{base.__name__}]"
    server.packet_class = PidPacket
