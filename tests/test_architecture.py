"""The import rules the architecture rests on, checked from the source with ast so they cannot
quietly come back: no module reaches into another package's private (underscore) names, and the
layers that must not know each other do not import each other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "registerwatch"

# (importing layer, imported layer): arrows that must not exist. Exports render from the store's
# records, never from a vendor's adapter or a rule; rules never read a return; the scan never
# reaches into sync.
FORBIDDEN_EDGES = (
    ("exports", "adapters"),
    ("exports", "validators"),
    ("validators", "exports"),
    ("scan", "sync"),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in PACKAGE_ROOT.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE_ROOT).parts
    }


MODULES = _modules()


def _package_of(module: str) -> str:
    """The package a module belongs to (a package ``__init__`` belongs to itself)."""
    if MODULES[module].name == "__init__.py":
        return module
    return module.rpartition(".")[0]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(module: str) -> Iterator[tuple[str, list[str]]]:
    """(imported module, names) for every ``import``/``from ... import`` of registerwatch."""
    path = MODULES[module]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module).split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "registerwatch":
                yield target, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "registerwatch":
                    yield alias.name, []


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_walker_sees_the_whole_package() -> None:
    assert "registerwatch.sync" in MODULES
    assert "registerwatch.adapters.base" in MODULES
    assert len(MODULES) > 150


def test_no_module_imports_another_packages_private_names() -> None:
    """A private name (``_x``) or module (``_common``) may be used only inside its own package."""
    offences = []
    for module in MODULES:
        own = _package_of(module)
        for target, names in _imports(module):
            if _inside(target, own):
                continue
            private_module = [p for p in target.split(".") if _private(p)]
            if private_module:
                offences.append(f"{module} imports private module {target}")
            offences += [f"{module} imports {target}.{n}" for n in names if _private(n)]
    assert offences == []


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN_EDGES)
def test_forbidden_layer_edges_are_absent(importer: str, imported: str) -> None:
    offences = [
        f"{module} -> {target}"
        for module in MODULES
        if _layer(module) == importer
        for target, _ in _imports(module)
        if _layer(target) == imported
    ]
    assert offences == []


def test_the_checks_catch_an_offence(tmp_path: Path) -> None:
    """The private-name check itself: a sideways import of ``_x`` is an offence, a dunder is not."""
    assert _private("_amendment_key") and _private("_common")
    assert not _private("__version__") and not _private("parse_deletion_ground")
    assert _inside("registerwatch.adapters.base.http", "registerwatch.adapters.base")
    assert not _inside("registerwatch.adapters.basement", "registerwatch.adapters.base")
