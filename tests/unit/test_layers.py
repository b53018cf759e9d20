"""The layers of DESIGN.md, "Layout", as docs/architecture.md draws them: imports go downwards
only, no two modules import each other round a cycle, and every module imports alone.

    edges      bridge.edges.*            the aiohttp app, Socket.IO and HTTP routes, pages, CLI
    adapters   bridge.adapters.*         implementations of interfaces the domain defines (fan-out)
    domain     bridge.domain.*           conversations, consent, invites, expiry, auth, access
    log        bridge.log.*              the log writer and its key (the pure part sits at the base)
    store      bridge.store.*, policy    models, queries, migrations; the werkafspraken
    rules      machine, roles, texts     the state tables, roles and consent texts: no I/O
    base       crypto, protocol, errors, clock, config, limits, i18n; the Merkle tree, signed notes,
               the offline verifier and the agreed rules, and a policy's text and signatures, which
               an auditor or a client uses without the server

The Python client (``bridge.client``) is no part of the server: it may import only crypto, and only
the edges may import it (the demo drives one).

Imports are read with ``ast`` (top level and inside functions alike), so an import that runs
only on some code path is held to the same rule.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "bridge"

BASE, RULES, STORE, LOG, DOMAIN, ADAPTERS, EDGES = range(7)
CLIENT = EDGES  # a client of the server, importable only by the edges
# Name patterns: "bridge.x" is that module, "bridge.x*" is the package bridge.x and all below it;
# the longest pattern that matches decides.
LAYERS: dict[str, int] = {
    "bridge": BASE,  # the package's own __init__
    "bridge.crypto*": BASE,
    "bridge.errors": BASE,
    "bridge.clock": BASE,
    "bridge.config": BASE,
    "bridge.protocol*": BASE,
    "bridge.limits": BASE,
    "bridge.i18n*": BASE,
    "bridge.log.merkle": BASE,
    "bridge.log.tree": BASE,
    "bridge.log.signed_note": BASE,
    "bridge.log.verify": BASE,
    "bridge.log.export_format": BASE,
    "bridge.log.rules": BASE,
    "bridge.log.progress": BASE,
    "bridge.policy.loader": BASE,
    "bridge.policy.signed": BASE,
    "bridge.store*": STORE,
    "bridge.policy*": STORE,
    "bridge.log*": LOG,
    "bridge.domain*": DOMAIN,
    "bridge.domain.machine": RULES,
    "bridge.domain.roles": RULES,
    "bridge.domain.consent.texts": RULES,
    "bridge.adapters*": ADAPTERS,
    "bridge.edges*": EDGES,
    "bridge.client*": CLIENT,
}
# Modules whose whole allowance is spelled out (beyond their own package, for packages).
ONLY: dict[str, frozenset[str]] = {
    "bridge.crypto": frozenset(),  # DESIGN.md: "crypto.py ... import[s] nothing of the server"
    "bridge.client": frozenset({"bridge.crypto"}),
    # DESIGN.md: "the verifier and the tree import nothing of the server".
    "bridge.log.merkle": frozenset(),
    "bridge.log.tree": frozenset({"bridge.log.merkle"}),
    "bridge.log.signed_note": frozenset({"bridge.crypto", "bridge.log.merkle"}),
    "bridge.log.verify": frozenset(
        {
            "bridge.crypto",
            "bridge.log.merkle",
            "bridge.log.signed_note",
            "bridge.log.export_format",
        }
    ),
    "bridge.log.export_format": frozenset(
        {"bridge.crypto", "bridge.log.merkle", "bridge.log.signed_note"}
    ),
    "bridge.log.export": frozenset({"bridge.crypto", "bridge.log.progress"}),
    "bridge.log.progress": frozenset(),
    "bridge.log.audit": frozenset(
        {
            "bridge.crypto",
            "bridge.log.merkle",
            "bridge.log.signed_note",
            "bridge.log.verify",
            "bridge.log.export",
            "bridge.log.rules",
            "bridge.log.progress",
        }
    ),
    "bridge.log.rules": frozenset({"bridge.policy.loader", "bridge.policy.signed"}),
    "bridge.policy.loader": frozenset({"bridge.crypto"}),
    "bridge.policy.signed": frozenset({"bridge.log.signed_note", "bridge.policy.loader"}),
}
# Run by Alembic with its context set up, never imported on its own.
NOT_IMPORTABLE_ALONE = frozenset({"bridge.store.migrations.env"})


def _group(module: str) -> str | None:
    """The LAYERS pattern that ``module`` falls under (the longest one), if any."""
    best: str | None = None
    for pattern in LAYERS:
        if pattern.endswith("*"):
            base = pattern[:-1]
            hit = module == base or module.startswith(base + ".")
        else:
            hit = module == pattern
        if hit and (best is None or len(pattern.rstrip("*")) > len(best.rstrip("*"))):
            best = pattern
    return best


def _only(module: str) -> frozenset[str] | None:
    """The spelled-out allowance of ``module`` or of the package it is in, if any."""
    for name, allowed in ONLY.items():
        if module == name or module.startswith(name + "."):
            return allowed
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    target: str
    line: int


def _is_module(name: str) -> bool:
    return name in MODULES


def _bridge_imports(module: str, path: Path) -> list[Import]:
    """Every ``bridge.*`` module that ``module`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # `from bridge.consent import log` imports bridge.consent and bridge.log.writer.
            names = [
                base,
                *(f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")),
            ]
        else:
            continue
        found += [
            Import(name, node.lineno)
            for name in names
            if name == "bridge" or name.startswith("bridge.")
        ]
    return found


def _violation(module: str, target: str) -> str | None:
    """Why ``module`` may not import ``target``, or None if it may."""
    if target == "bridge":  # the bare package, imported on the way to any bridge.* module
        return None
    source, dest = _group(module), _group(target)
    if source is None or dest is None:
        return f"{module if source is None else target} is in no layer"
    allowed = _only(module)
    if allowed is not None:
        own = next((name for name in ONLY if module == name or module.startswith(name + ".")), "")
        inside = target == own or target.startswith(own + ".")
        return (
            None if inside or target in allowed else f"{module} may import only {sorted(allowed)}"
        )
    if dest.startswith("bridge.client") and LAYERS[source] != EDGES:
        return "only the edges may use the client"
    if LAYERS[dest] > LAYERS[source]:
        return f"layer {LAYERS[source]} imports layer {LAYERS[dest]}"
    return None


def _import_graph() -> dict[str, set[str]]:
    return {
        module: {i.target for i in _bridge_imports(module, path) if i.target in MODULES}
        for module, path in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle of imports (one sorted list per strongly connected set of modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt == node or _is_parent(nxt, node):
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def _is_parent(package: str, module: str) -> bool:
    """Importing ``a.b`` imports the package ``a`` on the way: no edge of its own."""
    return module.startswith(package + ".")


# --- the checker itself ------------------------------------------------------------------------


def test_every_module_is_found() -> None:
    assert {"bridge", "bridge.crypto", "bridge.edges.cli", "bridge.domain.machine"} <= set(MODULES)


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("bridge.store.models", "bridge.log.writer"),
        ("bridge.log.writer", "bridge.domain.core"),
        ("bridge.protocol", "bridge.policy"),
        ("bridge.domain.machine", "bridge.domain.access"),
        ("bridge.domain.machine", "bridge.store.models"),
        ("bridge.domain.machine", "bridge.edges.app"),
        ("bridge.domain.conversations", "bridge.adapters"),
        ("bridge.domain.conversations", "bridge.client"),
        ("bridge.adapters", "bridge.edges.app"),
        ("bridge.crypto", "bridge.errors"),
        ("bridge.log.merkle", "bridge.crypto"),
        ("bridge.log.verify", "bridge.store.models"),
        ("bridge.client", "bridge.protocol"),
        ("bridge.domain.auth", "bridge.nowhere"),
    ],
)
def test_checker_refuses_an_upward_or_sideways_import(module: str, target: str) -> None:
    assert _violation(module, target) is not None


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("bridge.store.migrations.env", "bridge.store.models"),
        ("bridge.store.db", "bridge.config"),
        ("bridge.policy.loader", "bridge.crypto"),
        ("bridge.protocol", "bridge.errors"),
        ("bridge.log.writer", "bridge.store.models"),
        ("bridge.domain.core", "bridge.log.writer"),
        ("bridge.domain.consent.bridges", "bridge.store.db"),
        ("bridge.domain.consent.bridges", "bridge.domain.access"),
        ("bridge.domain.access", "bridge.domain.machine"),
        ("bridge.store.requests", "bridge.domain.machine"),
        ("bridge.edges.app", "bridge.adapters"),
        ("bridge.edges.demo", "bridge.client"),
        ("bridge.client", "bridge.crypto"),
    ],
)
def test_checker_allows_a_downward_import(module: str, target: str) -> None:
    assert _violation(module, target) is None


def test_checker_sees_imports_inside_functions() -> None:
    imports = {i.target for i in _bridge_imports("bridge.edges.cli", MODULES["bridge.edges.cli"])}
    assert "bridge.edges.demo" in imports  # imported inside the `demo` command only


def test_checker_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_checker_finds_no_cycle_in_a_chain() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


# --- the rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", list(MODULES))
def test_module_belongs_to_a_layer(module: str) -> None:
    assert _group(module) is not None, f"{module} is in no layer: add it to LAYERS"


@pytest.mark.parametrize("module", list(MODULES))
def test_module_imports_only_downwards(module: str) -> None:
    wrong = [
        f"{MODULES[module].relative_to(ROOT)}:{i.line} imports {i.target}: {why}"
        for i in _bridge_imports(module, MODULES[module])
        if (why := _violation(module, i.target)) is not None
    ]
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_round_a_cycle() -> None:
    assert _cycles(_import_graph()) == []


MAX_LINES = 400  # STYLE.md: one concern per module, ideally under ~400 lines


@pytest.mark.parametrize("module", list(MODULES))
def test_module_is_at_most_400_lines(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(ROOT)} has {lines} lines: split it"


def _start(code: str, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *flags, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


IMPORTABLE = [m for m in MODULES if m not in NOT_IMPORTABLE_ALONE]


@pytest.fixture(scope="module")
def imported_alone() -> dict[str, tuple[int, str]]:
    """Each module imported in a fresh interpreter of its own with warnings as errors (all
    started at once, so the suite does not wait for them one by one): return code, stderr."""
    started = {
        m: _start(f"import importlib; importlib.import_module({m!r})", "-W", "error")
        for m in IMPORTABLE
    }
    results: dict[str, tuple[int, str]] = {}
    for module, process in started.items():
        _, stderr = process.communicate(timeout=120)
        results[module] = (process.returncode, stderr)
    return results


@pytest.mark.parametrize("module", IMPORTABLE)
def test_module_imports_alone_without_warnings(
    module: str, imported_alone: dict[str, tuple[int, str]]
) -> None:
    returncode, stderr = imported_alone[module]
    assert returncode == 0, stderr
