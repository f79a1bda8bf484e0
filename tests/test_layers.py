"""The package's layering, read from its source: no import cycles, and a protocol layer
that does no I/O. These are structural rules, checked on every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import socketio_redis_async

pytestmark = pytest.mark.unit  # no Redis, no subprocess: tests/conftest.py checks

PACKAGE = Path(socketio_redis_async.__file__).parent
PURE = (
    "_protocol",
    "_cluster.plan",
    "_cluster.pending",
    "_cluster.requests",
    "_cluster.responders",
    "_errors",
)
"""Modules that must not import Redis, python-socketio or engine.io (requests and
responders may use asyncio: they wait on futures, but never on a socket)."""
IO_MODULES = ("redis", "socketio", "engineio", "aiohttp", "anyio")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["socketio_redis_async", *parts])


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(package modules, top-level external packages) that ``path`` imports, typing included."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    inner: set[str] = set()
    outer: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (inner if alias.name.startswith("socketio_redis_async") else outer).add(
                    alias.name
                    if alias.name.startswith("socketio_redis_async")
                    else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
                inner.update(c for c in candidates if _exists(c))
            elif node.module:
                outer.add(node.module.split(".")[0])
    inner.discard(name)
    return inner, outer


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        inner, _ = _imports(path)
        # Importing a subpackage's module also imports the subpackage itself; that edge is
        # not a dependency of the importer on its siblings.
        graph[_module_name(path)] = {m for m in inner if m != "socketio_redis_async"}
    return graph


def test_no_module_imports_a_module_that_imports_it_back():
    """The import graph, TYPE_CHECKING imports included, has no cycle of any length."""
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_protocol_and_bookkeeping_layers_do_no_io():
    """The protocol layer, the subscription planner, the requests bookkeeping and the
    responders import neither Redis nor python-socketio nor any I/O library."""
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path).split(".", 1)[1] if "." in _module_name(path) else ""
        if not name.startswith(PURE):
            continue
        _, outer = _imports(path)
        if bad := outer & set(IO_MODULES):
            offenders[name] = sorted(bad)
    assert offenders == {}


def test_the_protocol_layer_imports_only_itself_and_the_errors():
    """``_protocol`` depends on nothing else in the package but ``_errors``."""
    outside = {}
    for path in (PACKAGE / "_protocol").glob("*.py"):
        inner, _ = _imports(path)
        foreign = {
            m
            for m in inner
            if not m.startswith("socketio_redis_async._protocol")
            and m != "socketio_redis_async._errors"
        }
        if foreign:
            outside[path.name] = sorted(foreign)
    assert outside == {}


def test_modules_stay_small():
    """Every module is at most 300 lines."""
    big = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 300
    }
    assert big == {}


LAYERS = {
    # layer -> package prefixes it must not import (TYPE_CHECKING imports included)
    "_health": ("_transport", "_cluster", "_local", "_protocol", "_options", "_sockets"),
    "_transport": (
        "_cluster",
        "_local",
        "_manager",
        "_api",
        "_adapter",
        "_sharded_adapter",
        "_streams_adapter",
        "_options",
        "_sockets",
    ),
    "_local": (
        "_cluster",
        "_transport",
        "_manager",
        "_api",
        "_adapter",
        "_sharded_adapter",
        "_streams_adapter",
        "_options",
        "_sockets",
    ),
    "_cluster": (
        "_manager",
        "_api",
        "_adapter",
        "_sharded_adapter",
        "_streams_adapter",
        "_transport.pubsub",
        "_transport.sharded",
        "_transport.memory",
        "_transport.streams",
    ),
}
"""Imports point one way: facade -> engine (``_cluster``) -> local view, wire format and
the transport *interface* -> the ground (``_health``, ``_errors``); the engine never names a
concrete transport or the facade, and transports and the local view know nothing of the
engine or the options."""


def test_imports_point_one_way():
    """No layer imports a layer above it, and the engine sees only the transport protocol."""
    wrong = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path).split(".", 1)[1] if "." in _module_name(path) else ""
        for layer, forbidden in LAYERS.items():
            if not name.startswith(layer):
                continue
            inner, _ = _imports(path)
            bad = sorted(
                m
                for m in inner
                for f in forbidden
                if m == f"socketio_redis_async.{f}" or m.startswith(f"socketio_redis_async.{f}.")
            )
            if bad:
                wrong[name] = bad
    assert wrong == {}


def test_collaborators_hold_no_any_typed_back_reference():
    """No parameter or attribute named like the adapter, manager or engine is typed ``Any``:
    collaborators get a named, narrow interface (``Host``, ``Cluster``, ``Bus``...)."""
    suspects = {"manager", "adapter", "engine", "host", "cluster", "bus", "owner"}
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.arg) and node.arg in suspects:
                annotation = node.annotation
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                annotation = node.annotation if node.target.id in suspects else None
            else:
                continue
            if isinstance(annotation, ast.Name) and annotation.id == "Any":
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []


def test_no_test_only_code_ships():
    """The wheel holds no helper that only tests use (freezing Redis, map sizes)."""
    shipped = {
        f"{path.relative_to(PACKAGE)}:{node.name}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name in {"freeze", "thaw", "sizes"}
    }
    assert shipped == set()
