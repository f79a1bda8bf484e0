"""``python -m benchmarks profile``: where does a server's CPU go during scenario 1?

Starts the scenario-1 cluster for the adapter (``--contender``: another Python
contender, e.g. ``streams``; K clients on B), attaches ``py-spy record``
(sampling, non-blocking, idle frames excluded) to server B (or A) while A emits at full
rate, and prints the functions with the most self and inclusive samples. The raw collapsed
stacks are kept in ``benchmarks/out/profile-<role>-k<K>.txt``. Needs ``pip install py-spy``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

from .cluster import Blast, Cluster, blast_run
from .contenders import ADAPTER
from .scenarios import CONCURRENT, SHARD_ROOMS

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame(raw: str) -> str:
    """``func (path/to/file.py:12)`` -> ``file.py:func`` (line numbers merged)."""
    match = _FRAME.match(raw)
    if not match:
        return raw
    return f"{Path(match['file']).name}:{match['func']}"


def summarize(collapsed: str, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_frame(f) for f in stack.split(";") if f]
        total += samples
        if frames:
            own[frames[-1]] += samples
        for name in set(frames):
            inclusive[name] += samples
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "self %   function"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in own.most_common(top)]
    lines += ["", "incl %   function"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    return found


async def _record(
    py_spy: str, raw: Path, k: int, seconds: float, role: str, rate: int, contender: str, paced: int
) -> str:
    async with Cluster(contender) as cluster:
        if k:
            blast = Blast(cluster.a, await cluster.connect("k", cluster.b, k, ["k"]), "k", k)
        else:  # scenario 8/9's spread: 16 emitters round-robin over 64 rooms, one client each
            rooms = [f"s-{i}" for i in range(SHARD_ROOMS)]
            receiver = await cluster.connect("s", cluster.b, 1, rooms)
            blast = Blast(cluster.a, receiver, f"s:{SHARD_ROOMS}", 1, CONCURRENT)
        probe = await blast_run(cluster, blast, 500, rate=paced)
        events = int((paced or probe["msgs_per_s"]) * seconds)
        target = cluster.b if role == "b" else cluster.a
        spy = await asyncio.create_subprocess_exec(
            *(py_spy, "record", "--nonblocking", "--rate", str(rate), "--format", "raw"),
            *("--output", str(raw), "--pid", str(target.pid)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.sleep(1.0)  # py-spy attaches
            metrics = await blast_run(cluster, blast, events, rate=paced, latency=True)
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output and exits
            await asyncio.wait_for(spy.wait(), 30)
    return (
        f"{contender} server {role.upper()}, K={k or '64 rooms'}: "
        f"{metrics['msgs_per_s']:,.0f} msg/s, "
        f"B {metrics['cpu_us_server_B']:.0f} µs/msg, A {metrics['cpu_us_server_A']:.0f} µs/msg, "
        f"p50 {metrics['lat_p50_ms']:.2f} ms, p99 {metrics['lat_p99_ms']:.2f} ms"
    )


def profile(
    out: Path,
    k: int,
    seconds: float,
    role: str,
    rate: int,
    contender: str = ADAPTER,
    paced: int = 0,
) -> None:
    """Record a profile of server ``role`` of ``contender`` (emits at ``paced`` msg/s, 0:
    max rate) into ``out`` and print its summary."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = ("" if contender == ADAPTER else f"-{contender}") + (f"-{paced}" if paced else "")
    raw = out / f"profile-{role}-k{k}{suffix}.txt"
    print(asyncio.run(_record(_py_spy(), raw, k, seconds, role, rate, contender, paced)))
    print(summarize(raw.read_text()))
