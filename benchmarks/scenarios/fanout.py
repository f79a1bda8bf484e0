"""Scenario 3: local fan-out. One broadcast to 1k and 10k sockets connected to this
process: the adapter's local delivery (encode once, hand the same packet to every
socket) vs python-socketio's default AsyncManager path (one task per recipient).
Fake in-process Engine.IO sockets, ``eio.send_packet`` stubbed the same way for both
(see ``inproc.py``). The adapter's time includes its one PUBLISH."""

from __future__ import annotations

from ..config import Config
from ..contenders import ADAPTER, ASYNC_MANAGER
from ..processes import Processes
from ..results import Results

FANOUT = "fanout"
CONTENDERS = (ADAPTER, ASYNC_MANAGER)


def case_name(size: int) -> str:
    return f"{size} sockets"


async def run(config: Config, results: Results) -> None:
    async with Processes() as procs:
        redis = procs.start_redis()
        for contender in CONTENDERS:
            print(f"[fanout] {contender}", flush=True)
            rows = await procs.run_json(
                f"fanout-{contender}",
                "inproc",
                "fanout",
                "--contender",
                contender,
                "--redis",
                redis.url,
                "--sizes",
                ",".join(str(s) for s in config.fanout_sizes),
                "--broadcasts",
                str(config.fanout_broadcasts),
                "--reps",
                str(config.reps),
            )
            for row in rows:
                size, rep = int(row.pop("size")), int(row.pop("rep"))
                results.add(FANOUT, contender, case_name(size), rep, **row)
