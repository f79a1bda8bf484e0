"""Redis channel names of the Node ``@socket.io/redis-adapter`` classic protocol.

Pure: no I/O. ``K`` is the key prefix, ``N`` the namespace, ``U`` a server uid::

    K#N#            broadcasts to several rooms or to the whole namespace
    K#N#<room>#     broadcasts to exactly one room
    K#N#*           the pattern a classic Node server PSUBSCRIBEs
    K-request#N#    requests between servers (PUBSUB NUMSUB counts servers here)
    K-response#N#   answers, generic
    K-response#N#U# answers addressed to server U
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from .rooms import Room, room_to_str


class Kind(IntEnum):
    """What arrives on a channel."""

    BROADCAST = 0
    REQUEST = 1
    RESPONSE = 2


def glob_escape(text: str) -> str:
    """Escape Redis glob characters so that a PSUBSCRIBE pattern matches ``text`` literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True, slots=True)
class NamespaceChannels:
    """Every channel name one namespace uses, precomputed once."""

    key: str
    nsp: str
    broadcast: str
    pattern: str
    request: str
    response: str

    @classmethod
    def build(cls, key: str, nsp: str) -> NamespaceChannels:
        """Compute the channel names of namespace ``nsp`` under prefix ``key``."""
        base = f"{key}#{nsp}#"
        return cls(
            key=key,
            nsp=nsp,
            broadcast=base,
            pattern=glob_escape(base) + "*",
            request=f"{key}-request#{nsp}#",
            response=f"{key}-response#{nsp}#",
        )

    def room(self, room: Room) -> str:
        """The channel of a broadcast to exactly one room."""
        return f"{self.broadcast}{room_to_str(room)}#"

    def response_for(self, uid: str) -> str:
        """The response channel that only server ``uid`` listens to."""
        return f"{self.response}{uid}#"

    @property
    def uid_pattern(self) -> str:
        """PUBSUB CHANNELS pattern of every server's own response channel."""
        return glob_escape(self.response) + "?*#"

    def uids(self, channels: Iterable[bytes | str]) -> list[str]:
        """Sorted server uids from the channels ``uid_pattern`` matched."""
        names = (c.decode() if isinstance(c, bytes) else c for c in channels)
        return sorted(name[len(self.response) : -1] for name in names)

    def for_rooms(self, rooms: list[Room]) -> str:
        """The channel a broadcast to ``rooms`` is published on (Node's rule)."""
        return self.room(rooms[0]) if len(rooms) == 1 else self.broadcast

    def room_of(self, channel: str) -> str | None:
        """The room a broadcast channel names: ``""`` for ``K#N#``, None if foreign."""
        base = self.broadcast
        if not channel.startswith(base):
            return None
        if channel == base:
            return ""
        if not channel.endswith("#"):
            return None
        return channel[len(base) : -1]
