"""Scenario 6: memory. RSS growth of one server process per 10k connected sockets, then
per 10k rooms (one socket per room), for the adapter, python-socketio's AsyncManager and
AsyncRedisManager. Fake in-process Engine.IO sockets (see ``inproc.py``); a fresh
process for every repetition. Redis-side memory is not included."""

from __future__ import annotations

from ..config import Config
from ..contenders import ADAPTER, ASYNC_MANAGER, REDIS_MANAGER
from ..processes import Processes
from ..results import Results

MEMORY = "memory"
CONTENDERS = (ADAPTER, ASYNC_MANAGER, REDIS_MANAGER)
CASE = "per 10k"


async def run(config: Config, results: Results) -> None:
    async with Processes() as procs:
        redis = procs.start_redis()
        for contender in CONTENDERS:
            print(f"[memory] {contender}", flush=True)
            for rep in range(config.reps):
                row = await procs.run_json(
                    f"memory-{contender}",
                    "inproc",
                    "memory",
                    "--contender",
                    contender,
                    "--redis",
                    redis.url,
                    "--sockets",
                    str(config.memory_sockets),
                )
                results.add(MEMORY, contender, CASE, rep, **row)
