"""``AsyncStreamsRedisAdapter``: the cluster engine on Redis Streams, with the wire format
of Node's ``@socket.io/redis-streams-adapter`` 0.3.1.

All it does is choose: the ``StreamsWire`` format, and a ``StreamsTransport`` made of
a pub/sub transport (classic, or sharded with ``use_sharded_pub_sub``), a sharded
router for the stream commands, and stream readers; everything else is the engine's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._adapter import redis_transport_options
from ._api import ClusterAPI
from ._options import adapter_options, check_seconds
from ._protocol.streams_wire import StreamsWire
from ._recovery.options import ConnectionStateRecovery
from ._recovery.store import RedisSessionStore
from ._transport.base import Transport, TransportHooks
from ._transport.pubsub import RedisTransport
from ._transport.sharded import ShardedTransport
from ._transport.streams import StreamsTransport

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import AdapterOptions


class AsyncStreamsRedisAdapter(ClusterAPI):
    """Client manager for ``socketio.AsyncServer`` on Redis Streams: at-least-once
    delivery of broadcasts across Redis blips.

    Wire compatible with Node's ``@socket.io/redis-streams-adapter`` 0.3.1: Python and Node
    servers with the same ``stream_name``, ``stream_count`` and ``channel_prefix`` share
    broadcasts, rooms, acks and the cluster API. Broadcasts, joins, leaves and disconnects
    are entries of a stream (XADD); each server reads it from the last entry it handled,
    so whatever was added while its link was down arrives, in order, once it is back.
    Requests that wait for answers (``fetch_sockets``, server-side emits, acks) go over
    pub/sub, as in Node. The options are Node's ``createAdapter`` options in snake_case,
    with Node's defaults:

    :param url: Redis URL (as for :class:`AsyncRedisAdapter`, Sentinel included).
    :param stream_name: the stream, or the prefix of the streams (default ``socket.io``).
    :param stream_count: how many streams the namespaces are spread over (default 1),
        named ``<stream_name>-<hash(nsp) % stream_count>`` exactly as Node names them. A
        namespace whose hash is negative goes to ``<stream_name>--<n>``, a stream Node 0.3.1
        servers never read (a Node bug); Python servers read those too.
    :param channel_prefix: prefix of the pub/sub channels (default ``socket.io``); never the
        ``key`` of classic-adapter servers on the same Redis.
    :param use_sharded_pub_sub: SPUBLISH/SSUBSCRIBE instead of PUBLISH/SUBSCRIBE.
    :param max_len: trim each stream to about this many entries (``MAXLEN ~``, default
        10,000); a server that falls further behind loses entries, and says so.
    :param read_count: entries read per ``XREAD`` (default 100).
    :param read_linger: seconds to wait before the next ``XREAD`` when the last one found
        its entries already waiting, so that one read takes several (default 0.001: far
        less CPU per entry at high rates, up to a millisecond of latency there); 0 reads
        again at once, as Node does. A reader that waited for its entry never lingers.
    :param block_time: seconds an ``XREAD`` waits for entries (Node's ``blockTimeInMs``
        / 1000, default 5.0); never delays shutdown or a request.
    :param session_key_prefix: key prefix of recovery sessions (``sio:session:``).
    :param only_plaintext: never base64(msgpack) an entry, even with bytes in it.
    :param connection_state_recovery: a :class:`ConnectionStateRecovery` to let clients
        that lost their connection get back their sid, rooms, data and missed packets,
        from any Python or Node server of the cluster (off by default, as in Node).

    Every other option is :class:`AsyncRedisAdapter`'s (``requests_timeout``,
    ``ack_timeout``, ``max_message_size``, ``publish_timeout``, ``logger``...).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        stream_name: str = "socket.io",
        stream_count: int = 1,
        channel_prefix: str = "socket.io",
        use_sharded_pub_sub: bool = False,
        max_len: int = 10_000,
        read_count: int = 100,
        read_linger: float = 0.001,
        block_time: float = 5.0,
        session_key_prefix: str = "sio:session:",
        only_plaintext: bool = False,
        connection_state_recovery: ConnectionStateRecovery | None = None,
        **options: Unpack[AdapterOptions],
    ) -> None:
        csr = connection_state_recovery
        if csr is not None and not isinstance(csr, ConnectionStateRecovery):
            raise TypeError(
                "connection_state_recovery must be None or a ConnectionStateRecovery(...), "
                f"not {type(csr).__name__}"
            )
        if type(read_count) is not int or read_count < 1:
            raise ValueError(f"read_count must be an int of at least 1, not {read_count!r}")
        if not isinstance(session_key_prefix, str):
            raise TypeError("session_key_prefix must be a str, such as 'sio:session:'")
        block = check_seconds("block_time", block_time)
        if isinstance(read_linger, bool) or not isinstance(read_linger, (int, float)):
            raise TypeError("read_linger must be a number of seconds, such as 0.001 (0: off)")
        if not 0 <= read_linger <= 1:
            raise ValueError(f"read_linger must be between 0 and 1 second, not {read_linger}")
        wire = StreamsWire(
            stream_name=stream_name,
            stream_count=stream_count,
            max_len=max_len,
            only_plaintext=only_plaintext,
            sharded_pubsub=use_sharded_pub_sub,
        )
        logger: logging.Logger | None = options.get("logger")
        settings = adapter_options(url, channel_prefix, options)
        made: list[StreamsTransport] = []

        def sharded(hooks: TransportHooks) -> ShardedTransport:
            return ShardedTransport(**redis_transport_options(settings, hooks, logger))

        def classic(hooks: TransportHooks) -> Transport:
            kwargs: dict[str, Any] = redis_transport_options(settings, hooks, logger)
            return RedisTransport(pub_client=None, sub_client=None, **kwargs)

        def transport(hooks: TransportHooks) -> Transport:
            made.append(
                StreamsTransport(
                    hooks,
                    sharded if use_sharded_pub_sub else classic,
                    None if use_sharded_pub_sub else sharded,
                    streams=wire.streams,
                    read_count=read_count,
                    linger=float(read_linger),
                    block=block,
                    timeout=settings.requests_timeout,
                    logger=logger or logging.getLogger("socketio_redis_async"),
                )
            )
            return made[0]

        super().__init__(
            options=settings,
            wire=wire,
            transport=transport,
            logger=logger,
            on_connection_change=options.get("on_connection_change"),
        )
        self._streams = made[0]
        self._stream_wire = wire
        self.session_key_prefix = session_key_prefix
        if csr is not None:
            self._recover_connections(
                csr,
                RedisSessionStore(self._streams.command),
                key_prefix=session_key_prefix,
                stream_of=wire.stream_of,
                offset=self._streams.offset,
                max_len=max_len,
            )

    @property
    def stream_name(self) -> str:
        """The stream, or the prefix of the streams."""
        return self._stream_wire.stream_name

    @property
    def streams(self) -> list[str]:
        """Every stream this server reads."""
        return list(self._stream_wire.streams)

    def stream_of(self, namespace: str) -> str:
        """The stream ``namespace``'s entries go to."""
        return self._stream_wire.stream_of(namespace)
