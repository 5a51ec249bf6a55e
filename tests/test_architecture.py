"""The rules of docs/architecture.md, checked on the source: no import circle anywhere in
``aadb_toolkit`` (imports inside functions count too), nothing imports ``cli/``, ``models`` never
imports ``protocols``, the data model is a leaf and ``hub`` imports nothing above it, only the edges
turn a path into data, and one definition each of Spearman's ρ, Benjamini–Hochberg, the sha256
spelling, prediction writing and the dataset label."""

from __future__ import annotations

import ast
import functools
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
    return {k: set(v) for k, v in _import_graph().items()}


@functools.lru_cache(maxsize=1)
def _import_graph() -> dict[str, frozenset[str]]:
    modules = _modules()
    graph: dict[str, frozenset[str]] = {}
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
        graph[name] = frozenset(edges)
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
                "aadb_toolkit._atomic", "aadb_toolkit.paper",
                "aadb_toolkit._paths", "aadb_toolkit._markdown",  # leaf helpers: path containment, Markdown escaping,
                "aadb_toolkit._jsonfile"}  # and the one reader of a JSON object from a file
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
    assert _sources_with(r"^def spearman\(") == {"aadb_toolkit._ranks"}


def test_nothing_imports_the_command_line():
    graph = import_graph()
    users = {n for n, edges in graph.items() if any(e == "aadb_toolkit.cli" or e.startswith("aadb_toolkit.cli.")
                                                   for e in edges)}
    # the command modules import each other (and __main__ runs the CLI); nothing else does
    assert {n for n in users if not n.startswith("aadb_toolkit.cli")} <= {"aadb_toolkit.__main__"}


def test_models_never_import_protocols():
    graph = import_graph()
    bad = {n: {e for e in edges if e.startswith("aadb_toolkit.protocols")}
           for n, edges in graph.items() if n.startswith("aadb_toolkit.models")}
    assert not {n: e for n, e in bad.items() if e}


#: Modules that may turn a path or Hub id into data (call ``sources.load``): the edges (the CLI, the
#: demo, the one file adapter of the protocols) and the loaders themselves. ``models.trainer``,
#: ``models.predict`` and ``torch_data`` still accept a path as a shortcut (docs/architecture.md:
#: until the trainer's rewrite settles); no other stage may.
PATH_EDGES = {"aadb_toolkit.sources", "aadb_toolkit.demo", "aadb_toolkit.protocols", "aadb_toolkit.hub",
              "aadb_toolkit.hub.reader", "aadb_toolkit.ava"}
PATH_SHORTCUTS = {"aadb_toolkit.models.trainer", "aadb_toolkit.models.predict", "aadb_toolkit.torch_data"}


def _calls_load(path: Path) -> bool:
    """Whether a module calls ``sources.load``/``load_curated`` (as ``sources.load(...)`` or a
    ``load`` imported from ``sources``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    from_sources = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").endswith("sources") for a in node.names
                    if a.name in ("load", "load_curated")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ("load", "load_curated") and \
                    isinstance(f.value, ast.Name) and f.value.id == "sources":
                return True
            if isinstance(f, ast.Name) and f.id in from_sources:
                return True
    return False


def test_stage_functions_take_loaded_data_not_paths():
    callers = {name for name, path in _modules().items() if _calls_load(path)}
    assert "aadb_toolkit.protocols" in callers  # the check really finds calls
    stray = {n for n in callers if not n.startswith("aadb_toolkit.cli")} - PATH_EDGES - PATH_SHORTCUTS
    assert not stray, f"only the edges load data from a path: {sorted(stray)}"
    # every protocol's evaluate takes loaded data and predictions in memory
    import inspect

    from aadb_toolkit.protocols import PROTOCOLS

    for p in PROTOCOLS.values():
        params = list(inspect.signature(p.implementation().evaluate).parameters)
        assert params[:2] == ["data", "predictions"], p.name
        assert {i.name for i in p.inputs} <= set(params), p.name


def test_one_benjamini_hochberg():
    assert _sources_with(r"^def benjamini_hochberg\(") == {"aadb_toolkit._multitest"}
    assert _sources_with(r"^\s*(from|import) statsmodels|^\s+from statsmodels") == set()
    assert _sources_with(r"fdr_bh[\"']") <= {"aadb_toolkit._multitest"}


def test_one_prediction_writer_and_one_dataset_label():
    assert _sources_with(r"^def write_(predictions|submission)\(") == {"aadb_toolkit.submissions"}
    # prediction files are written by nothing else: no module writes a score column with to_csv
    assert _sources_with(r"^def predictions_text\(") == {"aadb_toolkit.submissions"}
    # the dataset label's "synthetic-" prefix is applied in one function
    assert _sources_with(r"SYNTHETIC_PREFIX\s*\+|f[\"']\{SYNTHETIC_PREFIX\}") == {"aadb_toolkit.data"}


#: Modules that use sha256 for something other than a recorded fingerprint: keyed pseudonyms (HMAC),
#: a seed or membership drawn from an id, an order, a cache key, a published file's known digest.
#: ``models.runs`` still spells the weights hash of run.json as bare hex (left to the trainer's rewrite).
SHA256_OTHER_USES = {"aadb_toolkit.curate._anonymize", "aadb_toolkit.curate._splits", "aadb_toolkit.piaa.episodes",
                     "aadb_toolkit.ava", "aadb_toolkit.models.pipeline", "aadb_toolkit.models.runs",
                     # weights files' digests, compared with a user's --init-sha256 (bare hex, as sha256sum prints)
                     "aadb_toolkit.models.archs.alexnet_arch", "aadb_toolkit.models.archs._hf",
                     "aadb_toolkit.models.frozen"}  # the feature cache's key, as pipeline's decode-cache key


def test_one_spelling_of_sha256():
    users = _sources_with(r"hashlib\.(sha256|file_digest)")
    assert "aadb_toolkit.data" in users
    assert users - {"aadb_toolkit.data"} <= SHA256_OTHER_USES
    # the bare hex is cut out of the helper's spelling only where a format fixes it: the model
    # sidecar's fields (validated as 64 hex digits by protocols.results.SIDECAR_FIELDS)
    assert _sources_with(r"sha256_fingerprint\([^\n]*\)\.split\(") <= {"aadb_toolkit.models.predict"}
