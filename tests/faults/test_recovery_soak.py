"""Connection-state recovery soak: 3 servers, forced disconnects of every kind while
numbered broadcasts flow, on Python servers and, side by side, on Node's.

12 real ``socket.io-client``s reach the servers through a round-robin proxy. An emitter
sends 0, 1, 2... to everyone throughout. Disconnects are forced one after another, four
at a time: a client closes its connection, the network drops one (the proxy cuts it), or
a server is SIGKILLed (a new one takes its place) and all its clients fall at once. Each
client must come back recovered, and have every number from its first on, once, in
order. ``SOCKETIO_REDIS_SOAK`` sets the number of forced disconnects (``nox -s faults``:
1,000; the suite: 120). Node servers are held to nothing: their figures are recorded.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from socketio_redis_async import AsyncEmitter
from tests.helpers import start_server_process, stop_process
from tests.node_harness import CsrSoak, NodeServer
from tests.proxy import Proxy

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

DISCONNECTS = int(os.environ.get("SOCKETIO_REDIS_SOAK", "120"))
CLIENTS = 12
WINDOW = 10  # seconds of max_disconnection_duration


@dataclass
class Server:
    port: int
    kill: Callable[[], None]
    close: Callable[[], Awaitable[None]]


async def python_server(url: str, key: str) -> Server:
    server = await start_server_process(url, key, streams=True, csr=WINDOW)
    return Server(
        int(server.url.rsplit(":", 1)[1]), server.proc.kill, lambda: stop_process(server.proc)
    )


async def node_server(url: str, key: str) -> Server:
    flags = ("--stream-name", key, "--csr", str(WINDOW * 1000))
    server = await NodeServer.start(url, key, streams=flags)
    return Server(server.port, server.proc.kill, server.aclose)


@dataclass
class Outcome:
    disconnects: int = 0
    reconnects: int = 0
    recovered: int = 0
    missed: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    kills: int = 0
    stuck: int = 0
    """Clients not connected again within the window after a forced disconnect."""
    seconds: float = 0.0


def judge(clients: list[dict[str, Any]], last: int) -> Outcome:
    """What the clients got, against 0..last: every number from each one's first on."""
    out = Outcome()
    for client in clients:
        numbers = client["numbers"]
        out.reconnects += len(client["sids"]) - 1
        out.recovered += sum(bool(r) for r in client["recovered"][1:])
        if numbers:
            want = range(numbers[0], last + 1)
            out.duplicated += len(numbers) - len(set(numbers))
            out.missed += len(set(want) - set(numbers))
            out.out_of_order += sum(b < a for a, b in zip(numbers, numbers[1:], strict=False))
    return out


async def soak(make: Callable[[], Awaitable[Server]], url: str, key: str) -> Outcome:
    rng = random.Random(7)
    servers = [await make() for _ in range(3)]
    outcome = Outcome()
    sent = -1
    try:
        async with (
            Proxy(*(s.port for s in servers)) as proxy,
            AsyncEmitter(url, streams=True, stream_name=key) as emitter,
        ):
            clients = await CsrSoak.connect(proxy.url, CLIENTS)
            try:
                async with anyio.create_task_group() as broadcasting:

                    async def broadcast() -> None:
                        nonlocal sent
                        while True:
                            await emitter.emit("n", sent + 1)
                            sent += 1
                            await anyio.sleep(0.005)  # about 150 a second

                    broadcasting.start_soon(broadcast)
                    started = time.monotonic()
                    await force(rng, proxy, clients, servers, make, outcome)
                    outcome.seconds = time.monotonic() - started
                    broadcasting.cancel_scope.cancel()
                last = sent
                with anyio.move_on_after(30):  # every client has it all (or never will)
                    while True:
                        report = await clients.report()
                        if all(c["numbers"] and c["numbers"][-1] >= last for c in report):
                            break
                        await anyio.sleep(0.1)
                judged = judge(report, last)
                judged.disconnects, judged.kills = outcome.disconnects, outcome.kills
                judged.stuck = outcome.stuck
                judged.seconds = outcome.seconds
                return judged
            finally:
                await clients.aclose()
    finally:
        for server in servers:
            await server.close()


async def force(
    rng: random.Random,
    proxy: Proxy,
    clients: CsrSoak,
    servers: list[Server],
    make: Callable[[], Awaitable[Server]],
    outcome: Outcome,
) -> None:
    """Force DISCONNECTS disconnects, four at a time; each waits for the clients it
    dropped to be back (connected again) before the next."""
    busy: set[int] = set()
    killing: list[bool] = []

    async def back(dropped: dict[int, int]) -> None:
        with anyio.move_on_after(WINDOW):  # a client not back by then is counted as stuck
            while any(clients.connects(i) <= n for i, n in dropped.items()):
                await anyio.sleep(0.01)
        outcome.stuck += sum(clients.connects(i) <= n for i, n in dropped.items())

    async def kill() -> None:
        victim = servers.pop(rng.randrange(len(servers)))
        proxy.route(*(s.port for s in servers))
        dropped = {
            int(tag): clients.connects(int(tag))
            for tag in proxy.tags_on(victim.port)
            if int(tag) not in busy  # a worker's client falls here too, counted there
        }
        busy.update(dropped)
        victim.kill()
        outcome.kills += 1
        outcome.disconnects += len(dropped)
        await back(dropped)
        await victim.close()
        servers.append(await make())
        proxy.route(*(s.port for s in servers))
        busy.difference_update(dropped)

    async def worker() -> None:
        while outcome.disconnects < DISCONNECTS:
            free = sorted(set(range(CLIENTS)) - busy)
            if not free:
                await anyio.sleep(0.01)
                continue
            if rng.random() < 0.02 and not killing:
                killing.append(True)  # one kill at a time: the other two servers stay up
                try:
                    await kill()
                finally:
                    killing.clear()
                continue
            i = rng.choice(free)
            busy.add(i)
            dropped = {i: clients.connects(i)}
            if rng.random() < 0.5:
                clients.close(i)  # the client closes its connection
            elif not proxy.cut_tag(str(i)):  # the network drops it
                busy.discard(i)
                continue
            outcome.disconnects += 1
            await back(dropped)
            busy.discard(i)

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(worker)


SERVERS = {"py": python_server, "node": node_server}


@pytest.mark.parametrize("kind", ["py", "node"])
async def test_recovery_soak(kind, redis_server, key, reliability):
    """Python servers: every forced disconnect is recovered, nothing missed or duplicated,
    in order. Node's streams adapter on the same soak is measured, not judged."""
    out = await soak(lambda: SERVERS[kind](redis_server.url, key), redis_server.url, key)
    name = "Python" if kind == "py" else "Node (streams adapter 0.3.1)"
    what = f"recovery soak, {name}: {out.disconnects} forced disconnects ({out.kills} kills)"
    total = out.reconnects or 1
    reliability.record(
        f"soak-{kind}-recovered",
        100 * out.recovered / total,
        "%",
        f"{what}, reconnects recovered",
        "100 %" if kind == "py" else "",
    )
    reliability.record(
        f"soak-{kind}-missed",
        out.missed,
        "packets",
        f"{what}, packets missed",
        "0" if kind == "py" else "",
    )
    reliability.record(
        f"soak-{kind}-duplicated",
        out.duplicated + out.out_of_order,
        "packets",
        f"{what}, packets duplicated or out of order",
        "0" if kind == "py" else "",
    )
    reliability.record(
        f"soak-{kind}-stuck",
        out.stuck,
        "clients",
        f"{what}, clients not connected again within the {WINDOW} s window",
        "0" if kind == "py" else "",
    )
    assert out.disconnects >= DISCONNECTS
    if kind == "py":
        assert out.reconnects >= out.disconnects
        assert (out.recovered, out.missed, out.duplicated, out.out_of_order, out.stuck) == (
            out.reconnects,
            0,
            0,
            0,
            0,
        ), out
