"""The import graph: no cycles between modules, and dependencies point one way (DESIGN.md).

grimp builds the graph from the source files. The installed ``leadsync`` package maps its
sub-packages onto the project's top-level folders (setuptools ``package-dir``), which grimp cannot
follow, so the test lays the same tree out as symbolic links in a temporary folder first.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[3]
FOLDERS = {
    "config": "config",
    "connectors": "connectors",
    "scoring": "scoring",
    "sync": "sync",
    "sandbox": "sandbox",
}


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grimp.ImportGraph]:
    tree = tmp_path_factory.mktemp("importtree")
    package = tree / "leadsync"
    package.mkdir()
    for name in ("__init__.py", "__main__.py"):
        (package / name).symlink_to(ROOT / "leadsync" / name)
    for name, folder in FOLDERS.items():
        (package / name).symlink_to(ROOT / folder, target_is_directory=True)
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "leadsync"}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(tree))
    try:
        yield grimp.build_graph("leadsync", cache_dir=None)
    finally:
        sys.path.remove(str(tree))
        for name in [name for name in sys.modules if name.split(".")[0] == "leadsync"]:
            del sys.modules[name]
        sys.modules.update(saved)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    edges = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_the_import_graph_has_no_cycles(graph: grimp.ImportGraph) -> None:
    cycles = _cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(cycle) for cycle in cycles)


# (importer, imported) pairs that must never hold, directly or through other modules.
FORBIDDEN = [
    ("leadsync.scoring", "leadsync.sync"),
    ("leadsync.connectors", "leadsync.sync"),
    ("leadsync.connectors", "leadsync.scoring"),
    ("leadsync.config", "leadsync.sync"),
]


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN, ids=lambda value: value.split(".")[-1])
def test_dependencies_point_one_way(graph: grimp.ImportGraph, importer: str, imported: str) -> None:
    chains = graph.find_shortest_chains(importer=importer, imported=imported, as_packages=True)
    assert not chains, f"{importer} must not import {imported}: " + "; ".join(" -> ".join(c) for c in chains)


def test_scoring_reads_only_the_normalised_records(graph: grimp.ImportGraph) -> None:
    # DESIGN.md: scoring reads only normalised records (and raises the shared errors), no client code.
    allowed = {"leadsync.connectors.records", "leadsync.connectors.errors"}
    reached = {
        imported
        for module in graph.find_children("leadsync.scoring") | graph.find_descendants("leadsync.scoring")
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith("leadsync.connectors")
    }
    assert reached <= allowed, f"scoring imports connector code: {sorted(reached - allowed)}"


def test_production_code_never_imports_the_sandbox(graph: grimp.ImportGraph) -> None:
    # DESIGN.md: only the `demo` and `sandbox` commands may; they live in these CLI modules.
    allowed = {"leadsync.sync.cli.demo", "leadsync.sync.cli.sandbox", "leadsync.sync.demo"}
    importers = {
        module
        for module in graph.find_modules_that_directly_import("leadsync.sandbox")
        | {
            m
            for sub in graph.find_children("leadsync.sandbox")
            for m in graph.find_modules_that_directly_import(sub)
        }
        if not module.startswith("leadsync.sandbox")
    }
    assert importers <= allowed, f"outside the demo and sandbox commands: {sorted(importers - allowed)}"
