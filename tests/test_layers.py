"""The layers of docs/architecture.md, checked on the source: imports point one way, no cycles.

Every import statement of every module counts, at module level or inside a function (a
deferred import is still a dependency), except those under ``if TYPE_CHECKING:``. What a
module loads at run time through the modules it imports is checked in fresh processes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fresh_process import heavy_loaded_per_module

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hpo", "search_spaces")

# Each layer and the hpo layers it may import; hpo.errors is the one root every layer shares.
ALLOWED: dict[str, set[str]] = {
    "hpo.errors": set(),
    "hpo.data": {"hpo.errors"},
    "hpo.study": {"hpo.errors", "hpo.data"},
    "hpo.train": {"hpo.errors", "hpo.data"},
    "hpo.store": {"hpo.errors", "hpo.data", "hpo.study"},
    "hpo.runners": {"hpo.errors", "hpo.data", "hpo.study", "hpo.train", "hpo.store"},
    "hpo.results": {"hpo.errors", "hpo.data", "hpo.study", "hpo.train", "hpo.store"},
    "hpo.cli": {"hpo", "hpo.errors", "hpo.data", "hpo.study", "hpo.train", "hpo.store",
                "hpo.runners", "hpo.results"},
    # The package facade re-exports the public API of every layer but the CLI.
    "hpo": {"hpo.errors", "hpo.data", "hpo.study", "hpo.train", "hpo.store", "hpo.runners",
            "hpo.results"},
}
# Third-party packages a layer must not import (DESIGN.md: the training core imports torch
# only, only the runners import ray).
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "hpo.train": {"optuna", "ray"},
    "hpo.data": {"optuna", "ray"},
    "hpo.study": {"ray"},
    "hpo.store": {"ray"},
    "hpo.results": {"ray"},
    "hpo.cli": {"ray"},
    "search_spaces": {"ray"},
}


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imported(path: Path, module: str) -> set[str]:
    """Modules this file imports, resolved to absolute names; TYPE_CHECKING blocks skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from hpo.results import plots`` imports the module hpo.results.plots.
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if (ROOT / Path(*f"{base}.{alias.name}".split("."))).with_suffix(".py")
                         .exists())
    return found


def _walk_runtime(node: ast.AST) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from (n for orelse in child.orelse for n in [orelse, *_walk_runtime(orelse)])
            continue
        yield child
        yield from _walk_runtime(child)


def layer_of(module: str) -> str:
    if module == "hpo" or not module.startswith("hpo."):
        return module.split(".")[0]
    return ".".join(module.split(".")[:2])


GRAPH = {name: imported(path, name) for name, path in modules()}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down_the_layers(module: str) -> None:
    layer = layer_of(module)
    ours = {layer_of(m) for m in GRAPH[module] if m == "hpo" or m.startswith("hpo.")}
    if module.startswith("search_spaces"):
        assert not ours, f"{module} imports {ours}: search_spaces must import nothing from hpo"
        return
    wrong = ours - ALLOWED[layer] - {layer}
    assert not wrong, f"{module} (layer {layer}) imports {sorted(wrong)} against the layers"
    third = {m.split(".")[0] for m in GRAPH[module]}
    banned = third & FORBIDDEN_THIRD_PARTY.get(layer, set())
    assert not banned, f"{module} (layer {layer}) must not import {sorted(banned)}"


TRAINING_CORE = sorted(m for m in GRAPH if layer_of(m) in ("hpo.data", "hpo.train"))


@pytest.fixture(scope="module")
def core_loads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    # One process for all (each module imported alone in a fork of it): a process each
    # would pay torch's seconds of import 24 times.
    heavy = ("optuna", "ray", "sklearn", "matplotlib", "pandas")
    return heavy_loaded_per_module(TRAINING_CORE, tmp_path_factory.mktemp("core"), heavy)


@pytest.mark.parametrize("module", TRAINING_CORE)
def test_the_training_core_loads_no_optuna_nor_ray(
    module: str, core_loads: dict[str, list[str]]
) -> None:
    """Not through search_spaces either: a worker trains without loading the search side."""
    assert not {"optuna", "ray", "sklearn", "matplotlib"} & set(core_loads[module]), (
        f"importing {module} alone loads {core_loads[module]}")


def test_no_module_is_imported_by_the_cli_side_only_into_the_cli() -> None:
    importers = [m for m, deps in GRAPH.items()
                 if layer_of(m) != "hpo.cli" and any(layer_of(d) == "hpo.cli" for d in deps)]
    assert importers == [], f"only the CLI may import hpo.cli, but {importers} do"


def test_no_import_cycles_between_modules() -> None:
    internal = {m: {d for d in deps if d in GRAPH and d != m} for m, deps in GRAPH.items()}
    # A package's __init__ that re-exports its own submodules is no cycle: drop parent edges.
    for module, deps in internal.items():
        internal[module] = {d for d in deps if not module.startswith(f"{d}.")}
    cycle = _find_cycle(internal)
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_checker_sees_a_cycle_and_a_wrong_layer() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
    assert "hpo.results" not in ALLOWED["hpo.runners"]
    assert layer_of("hpo.results.report") == "hpo.results" and layer_of("hpo") == "hpo"
