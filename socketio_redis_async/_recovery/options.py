"""``ConnectionStateRecovery``: the option that turns recovery on. Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

_MAX_WINDOW = 30 * 24 * 3600.0  # Redis keeps a PX of any size, but a month is plenty


@dataclass(frozen=True, slots=True)
class ConnectionStateRecovery:
    """Let a client that lost its connection get back its sid, rooms, data and every
    packet it missed (Node's ``connectionStateRecovery`` server option).

    :param max_disconnection_duration: seconds a session stays restorable after the
        disconnect (Node's ``maxDisconnectionDuration`` / 1000; default 120). The window
        runs from the disconnect, however long the connection lasted before it, and also
        when the server holding the socket died without running its disconnect code.
    :param skip_middlewares: Node's option, kept so that one configuration reads the same
        on both servers. python-socketio has no middleware stage: the ``connect`` handler,
        where python-socketio apps authenticate, always runs, and tells a recovered socket
        by ``adapter.recovered(sid)``; so this flag changes nothing here.
    """

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True

    def __post_init__(self) -> None:
        window = self.max_disconnection_duration
        if isinstance(window, bool) or not isinstance(window, (int, float)):
            raise TypeError(
                "max_disconnection_duration must be a number of seconds such as 120, not "
                f"{type(window).__name__}"
            )
        if not 0 < window <= _MAX_WINDOW or math.isnan(window):
            raise ValueError(
                "max_disconnection_duration must be more than 0 and at most 30 days "
                f"(in seconds), not {window!r}"
            )
        if not isinstance(self.skip_middlewares, bool):
            raise TypeError("skip_middlewares must be True or False")

    @property
    def window_ms(self) -> int:
        """The window in milliseconds, as Redis' ``PX`` takes it."""
        return max(1, math.ceil(self.max_disconnection_duration * 1000))
