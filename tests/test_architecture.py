"""The package's import graph: no circle anywhere in ``aadb_toolkit`` (imports inside functions
count too), the data model is a leaf, and ``hub`` imports nothing above the data model."""

from __future__ import annotations

import ast
from pathlib import Path

import aadb_toolkit

PACKAGE_DIR = Path(aadb_toolkit.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """module → the package modules it imports (every ``import`` statement, at any depth)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        edges.add(sub)
                    elif target in modules:
                        edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_circle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "aadb_toolkit.data" in graph and graph["aadb_toolkit.sources"]  # the graph was really built
    assert find_cycles(graph) == []


def test_data_model_is_a_leaf_and_hub_stays_below_sources():
    graph = import_graph()
    assert graph["aadb_toolkit.data"] <= {"aadb_toolkit.schema", "aadb_toolkit.errors"}
    for name, edges in graph.items():
        if name.startswith("aadb_toolkit.hub"):
            bad = {e for e in edges if not e.startswith("aadb_toolkit.hub")} - {
                "aadb_toolkit", "aadb_toolkit.schema", "aadb_toolkit.errors", "aadb_toolkit.data",
                "aadb_toolkit._atomic", "aadb_toolkit.paper"}
            assert not bad, f"{name} imports {bad}"


def test_no_stage_asks_hub_or_simulate_about_provenance():
    graph = import_graph()
    edges_to = {n for n, e in graph.items() if e & {"aadb_toolkit.simulate", "aadb_toolkit.hub", "aadb_toolkit.hub.writer"}}
    # only the edges (CLI, demo) and the one loader reach into hub or simulate
    allowed = {"aadb_toolkit.sources", "aadb_toolkit.demo"}
    assert {n for n in edges_to if not n.startswith(("aadb_toolkit.cli", "aadb_toolkit.hub"))} <= allowed


def _sources_with(pattern: str) -> set[str]:
    import re

    rx = re.compile(pattern, re.MULTILINE)
    return {name for name, path in _modules().items() if rx.search(path.read_text(encoding="utf-8"))}


def test_one_home_for_each_shared_mechanism():
    # close-match suggestions: only the registry helper builds them
    assert _sources_with(r"^\s*import difflib|^\s*from difflib") == {"aadb_toolkit._registry"}
    # "sha256:" fingerprints: only the one helper spells them
    assert _sources_with(r"[\"']sha256:[\"']\s*\+") == {"aadb_toolkit.data"}
    # Spearman's rho: one implementation (scipy's spearmanr is used by no module)
    assert _sources_with(r"spearmanr\(") == set()
    assert _sources_with(r"^def spearman\(") == {"aadb_toolkit._ranks", "aadb_toolkit.protocols._ranking"}
