"""The benchmarks' one entry point: ``python -m benchmarks [--quick] [...]``.

Runs every scenario for every contender in this one run, then writes ``results.json``,
``RESULTS.md`` and ``charts/*.png``: into ``benchmarks/`` for a full run, into
``benchmarks/out/`` (git-ignored) for ``--quick`` or ``--only``. ``render`` rewrites them
from a results.json; ``profile`` runs py-spy on a server of scenario 1.
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
from pathlib import Path

from . import machine, report
from .config import FULL, QUICK, Config
from .contenders import ADAPTER, ADAPTER_NOMUX, ADAPTER_PLAIN, SHARDED, STREAMS
from .profiling import profile
from .results import Results
from .scenarios import CONTENDERS, SCENARIOS

HERE = Path(__file__).resolve().parent


def _scenario_list() -> str:
    lines = ["scenarios (run in this order; README.md says what each one measures):"]
    for name, scenario in SCENARIOS.items():
        summary = (scenario.__doc__ or "").split("\n", 1)[0]
        lines.append(f"  {name:11} {summary}")
        lines.append(f"  {'':11} contenders: {', '.join(CONTENDERS[name])}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        epilog=_scenario_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run with tiny sizes (a few minutes)"
    )
    parser.add_argument(
        "--only",
        default="",
        metavar="SCENARIOS",
        help="comma-separated subset of the scenarios below (writes to benchmarks/out/)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions (at least 3)")
    parser.add_argument("--out", type=Path, help="output directory")
    commands = parser.add_subparsers(dest="command", metavar="{render,profile}")
    render_cmd = commands.add_parser(
        "render", help="rewrite RESULTS.md and the charts from a results.json, run nothing"
    )
    render_cmd.add_argument("results_json", type=Path)
    profile_cmd = commands.add_parser(
        "profile", help="py-spy profile of a scenario-1 server (needs py-spy)"
    )
    profile_cmd.add_argument("--role", choices=("a", "b"), default="b", help="which server")
    profile_cmd.add_argument(
        "--contender",
        choices=(ADAPTER, ADAPTER_NOMUX, ADAPTER_PLAIN, SHARDED, STREAMS),
        default=ADAPTER,
        help="which Python adapter (default: adapter)",
    )
    profile_cmd.add_argument(
        "--k", type=int, default=20, help="clients on server B (0: the 64-room spread)"
    )
    profile_cmd.add_argument("--seconds", type=float, default=5.0, help="profiled run length")
    profile_cmd.add_argument("--rate", type=int, default=1000, help="samples per second")
    profile_cmd.add_argument(
        "--paced", type=int, default=0, help="emit at this many msg/s (default: max rate)"
    )
    for sub in (render_cmd, profile_cmd):
        sub.add_argument("--out", type=Path, default=argparse.SUPPRESS, help="output directory")
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps must be at least 3")
    unknown = [name for name in args.only.split(",") if name and name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    return args


async def run_all(config: Config, names: list[str], results: Results) -> bool:
    """Run the scenarios in order; a failing one is reported and the rest still run."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
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


def render(path: Path, out: Path) -> None:
    """Rewrite RESULTS.md, results.json and the charts from a results.json."""
    document = json.loads(path.read_text())
    results = Results.from_json(document)
    config = Config.from_json(document["config"])
    report.write(out, results, document["machine"], config, document["meta"])
    print(f"rewrote {out / 'RESULTS.md'} and {out / 'charts'}/ from {path}")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the scenarios and write the results, the report and the charts."""
    config = dataclasses.replace(QUICK if args.quick else FULL, reps=args.reps)
    names = [name for name in args.only.split(",") if name] or list(SCENARIOS)
    out = args.out or (HERE / "out" if args.quick or args.only else HERE)
    started = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = Results()
    ok = asyncio.run(run_all(config, names, results))
    meta = {
        "command": shlex.join(["python", "-m", "benchmarks", *argv]),
        "date": date,
        "duration_s": time.monotonic() - started,
        "scenarios": names,
    }
    found = report.write(out, results, machine.describe(), config, meta)
    print(f"\nwrote {out / 'RESULTS.md'}, {out / 'results.json'} and {out / 'charts'}/")
    for target in found:
        print(f"  {target.status:5} {target.name}: {target.measured}")
    print(f"total {time.monotonic() - started:.1f} s")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.command == "render":
        render(args.results_json, args.out or args.results_json.parent)
        return 0
    if args.command == "profile":
        out = args.out or HERE / "out"
        profile(out, args.k, args.seconds, args.role, args.rate, args.contender, args.paced)
        return 0
    return run(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
