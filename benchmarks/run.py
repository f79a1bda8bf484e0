"""Entry point: ``python -m benchmarks [--quick] [--only SCENARIOS] [--out DIR]``.

Runs every scenario for every contender in this one run, then writes ``results.json``,
``RESULTS.md`` and ``charts/*.png``: into ``benchmarks/`` for a full run, into
``benchmarks/out/`` (git-ignored) for ``--quick`` or ``--only``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import shlex
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from . import charts, machine, report, targets
from .config import FULL, QUICK, Config
from .results import Results
from .scenarios import cross_node, emitters, fanout, memory, requests, rooms

HERE = Path(__file__).resolve().parent
Scenario = Callable[[Config, Results], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    "cross_node": cross_node.run,  # 1 and 2
    "fanout": fanout.run,  # 3
    "rooms": rooms.run,  # 4
    "requests": requests.run,  # 5
    "memory": memory.run,  # 6
    "emitters": emitters.run,  # 7
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run with tiny sizes (under a minute)"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of: {', '.join(SCENARIOS)} (writes to benchmarks/out/)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions (at least 3)")
    parser.add_argument("--out", type=Path, help="output directory")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="only rewrite RESULTS.md and the charts from an existing results.json",
    )
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps must be at least 3")
    unknown = [name for name in args.only.split(",") if name and name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    return args


async def run_all(config: Config, names: list[str], results: Results) -> bool:
    """Run the scenarios in order; a failing one is reported and the rest still run."""
    ok = True
    for name in names:
        began = time.monotonic()
        print(f"== scenario {name}", flush=True)
        try:
            await SCENARIOS[name](config, results)
        except Exception as exc:
            ok = False
            traceback.print_exc()
            results.notes.append(f"scenario {name} failed: {type(exc).__name__}: {exc}")
        print(f"== {name} took {time.monotonic() - began:.1f} s", flush=True)
    return ok


async def _main(config: Config, names: list[str], results: Results) -> bool:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_all(config, names, results)


def render(path: Path, out: Path) -> None:
    """Rewrite RESULTS.md, results.json and the charts from a results.json."""
    document = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(Config)}
    config = Config(
        **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in document["config"].items()
            if k in fields
        }
    )
    results = Results.from_json(document)
    meta = dict(document["meta"])
    meta["charts"] = charts.draw(results, out / "charts")
    found = targets.evaluate(results)
    report.write(out, results, found, document["machine"], config, meta)
    print(f"rewrote {out / 'RESULTS.md'} and {out / 'charts'}/ from {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        render(args.render, args.out or args.render.parent)
        return 0
    config = dataclasses.replace(QUICK if args.quick else FULL, reps=args.reps)
    names = [name for name in args.only.split(",") if name] or list(SCENARIOS)
    out = args.out or (HERE / "out" if args.quick or args.only else HERE)
    started = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = Results()
    ok = asyncio.run(_main(config, names, results))
    found = targets.evaluate(results)
    meta = {
        "command": shlex.join(
            ["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": date,
        "duration_s": time.monotonic() - started,
        "scenarios": names,
    }
    meta["charts"] = charts.draw(results, out / "charts")
    report.write(out, results, found, machine.describe(), config, meta)
    print(f"\nwrote {out / 'RESULTS.md'}, {out / 'results.json'} and {out / 'charts'}/")
    for target in found:
        print(f"  {target.status:5} {target.name}: {target.measured}")
    print(f"total {time.monotonic() - started:.1f} s")
    return 0 if ok else 1
