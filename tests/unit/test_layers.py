"""The layers of DESIGN.md, "Layout": imports go downwards only,
``app/cli -> conversations/consent/auth -> store/crypto/protocol/policy``, and crypto.py imports
nothing of the server, so an auditor or a client can use it alone.

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

# Name patterns: "bridge.x" is that module, "bridge.x*" is the package bridge.x and all below it.
BOTTOM = 0  # store, crypto, protocol, policy and the plain helpers
CORE = 1  # conversations, consent, auth and the domain modules around them
EDGE = 2  # app, cli and the other edges
LAYERS: dict[str, int] = {
    "bridge": BOTTOM,  # the package's own __init__
    "bridge.crypto": BOTTOM,
    "bridge.errors": BOTTOM,
    "bridge.protocol": BOTTOM,
    "bridge.policy*": BOTTOM,
    "bridge.store*": BOTTOM,
    "bridge.i18n*": BOTTOM,
    "bridge.config": BOTTOM,
    "bridge.limits": BOTTOM,
    "bridge.delivery": BOTTOM,
    "bridge.consent*": CORE,
    # The auditor's side of the log: pure, and usable without the server.
    "bridge.consent.merkle": BOTTOM,
    "bridge.consent.notes": BOTTOM,
    "bridge.consent.verify": BOTTOM,
    "bridge.consent.export": BOTTOM,
    "bridge.consent.audit": BOTTOM,
    "bridge.core": CORE,
    "bridge.transcripts": CORE,
    "bridge.conversations": CORE,
    "bridge.auth": CORE,
    "bridge.access": CORE,
    "bridge.participants": CORE,
    "bridge.devices": CORE,
    "bridge.orgkeys": CORE,
    "bridge.presence": CORE,
    "bridge.app": EDGE,
    "bridge.cli": EDGE,
    "bridge.socket_api": EDGE,
    "bridge.http_api": EDGE,
    "bridge.audit_api": EDGE,
    "bridge.pages": EDGE,
    "bridge.demo": EDGE,
    "bridge.demo_accounts": EDGE,
    # A client of the server, not a part of it: only the edges may use it (the demo drives one).
    "bridge.client": EDGE,
}
# What a bottom module may import besides its own group.
BOTTOM_SHARED = frozenset({"bridge.crypto", "bridge.errors", "bridge.consent.merkle"})
# Modules whose whole allowance is spelled out.
ONLY: dict[str, frozenset[str]] = {
    "bridge.crypto": frozenset(),  # DESIGN.md: "crypto.py ... import[s] nothing of the server"
    "bridge.client": frozenset({"bridge.crypto"}),
    # DESIGN.md: "the proof verifier import[s] nothing of the server".
    "bridge.consent.merkle": frozenset(),
    "bridge.consent.notes": frozenset({"bridge.crypto", "bridge.consent.merkle"}),
    "bridge.consent.verify": frozenset(
        {"bridge.crypto", "bridge.consent.merkle", "bridge.consent.notes"}
    ),
    "bridge.consent.export": frozenset({"bridge.crypto"}),
    "bridge.consent.audit": frozenset(
        {
            "bridge.crypto",
            "bridge.consent.merkle",
            "bridge.consent.notes",
            "bridge.consent.verify",
            "bridge.consent.export",
        }
    ),
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
            # `from bridge.consent import log` imports bridge.consent and bridge.consent.log.
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
    if source == dest:
        return None
    if module in ONLY:
        return (
            None if target in ONLY[module] else f"{module} may import only {sorted(ONLY[module])}"
        )
    if LAYERS[source] == BOTTOM:
        return None if target in BOTTOM_SHARED else "a bottom module imports another bottom group"
    if LAYERS[dest] > LAYERS[source]:
        return f"layer {LAYERS[source]} imports layer {LAYERS[dest]}"
    return None


# --- the checker itself ------------------------------------------------------------------------


def test_every_module_is_found() -> None:
    assert {"bridge", "bridge.crypto", "bridge.cli", "bridge.consent.machine"} <= set(MODULES)


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("bridge.store.models", "bridge.consent.log"),
        ("bridge.store.db", "bridge.protocol"),
        ("bridge.policy.loader", "bridge.config"),
        ("bridge.protocol", "bridge.policy"),
        ("bridge.consent.machine", "bridge.app"),
        ("bridge.conversations", "bridge.client"),
        ("bridge.crypto", "bridge.errors"),
        ("bridge.client", "bridge.protocol"),
        ("bridge.auth", "bridge.nowhere"),
    ],
)
def test_checker_refuses_an_upward_or_sideways_import(module: str, target: str) -> None:
    assert _violation(module, target) is not None


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("bridge.store.migrations.env", "bridge.store.models"),
        ("bridge.policy.loader", "bridge.crypto"),
        ("bridge.protocol", "bridge.errors"),
        ("bridge.consent.bridges", "bridge.store.db"),
        ("bridge.consent.bridges", "bridge.access"),
        ("bridge.demo", "bridge.client"),
        ("bridge.client", "bridge.crypto"),
    ],
)
def test_checker_allows_a_downward_import(module: str, target: str) -> None:
    assert _violation(module, target) is None


def test_checker_sees_imports_inside_functions() -> None:
    imports = {i.target for i in _bridge_imports("bridge.cli", MODULES["bridge.cli"])}
    assert "bridge.demo" in imports  # imported inside the `demo` command only


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
