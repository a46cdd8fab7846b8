"""The package's modules import one way: no cycles, and no import from a lower layer upwards.

Data flow one way through exopk: a model file becomes a :class:`~exopk.model.Model`, the engine
simulates it under a regimen, the observation layer turns simulations into the numbers studies
publish and their likelihood, inference samples the posterior, and figures and the command line
present results. The layers, lowest first (a module may import its own layer and the layers
below it, never one above):

0. ``exopk._lazy``, ``exopk._version``, ``exopk.errors``, ``exopk.io``, ``exopk.limits``,
   ``exopk.provenance``, ``exopk.units`` (the unit registry): no exopk imports but each other.
1. ``exopk.physiology``: species presets.
2. ``exopk.model``, ``exopk.models_library``: domain objects, model files, expressions, priors,
   the physiology symbols a model uses; nothing that simulates.
3. ``exopk.dosing``: regimens (independent of any model).
4. ``exopk.data``: evidence tables and event tables (read into records and regimens).
5. ``exopk.engine``: a model compiled and simulated; PK summaries.
6. ``exopk.observation``: from simulations to published numbers, and their likelihood.
7. ``exopk.inference``: posteriors, samplers, diagnostics, fit files and results.
8. ``exopk.canvas``, ``exopk.figures``, ``exopk.diagram``, ``exopk.metrics``, ``exopk.batch``:
   the drawing canvas, figures of fit results and model diagrams; decision metrics, route
   comparison, experiment design, regimen optimisation and the report, from a fit's draws;
   many fits on Dask.
9. ``exopk.cli``: the command line.
10. ``exopk`` (the package root): the public facade; nothing inside the package imports it.

Imports are read with :mod:`ast` from every module, at module level and inside functions (a
deferred import is still a dependency), and from the ``_LAZY`` table of a package whose public
names are imported on first use (:mod:`exopk._lazy`): each module named there is a dependency.
"""

import ast
from pathlib import Path

import pytest

import exopk

ROOT = Path(exopk.__file__).parent

LAYERS = (
    ("exopk._lazy", "exopk._version", "exopk.errors", "exopk.io", "exopk.limits",
     "exopk.provenance", "exopk.units"),
    ("exopk.physiology",),
    ("exopk.model", "exopk.models_library"),
    ("exopk.dosing",),
    ("exopk.data",),
    ("exopk.engine",),
    ("exopk.observation",),
    ("exopk.inference",),
    ("exopk.canvas", "exopk.figures", "exopk.diagram", "exopk.metrics", "exopk.batch"),
    ("exopk.cli",),
    ("exopk",),
)


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for every module of the package under ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """exopk modules that ``name`` imports anywhere in its file.

    ``from package import x`` counts as importing the module ``package.x`` when that is a module,
    else ``package``; relative imports are resolved against ``name``'s package.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY"
                                                  for t in node.targets):
            targets = [c.value for c in ast.walk(node.value)
                       if isinstance(c, ast.Constant) and isinstance(c.value, str)]
        else:
            continue
        found.update(t for t in targets if t == "exopk" or t.startswith("exopk."))
    found.discard(name)
    return found


def layer_of(name: str) -> int:
    """Index in :data:`LAYERS` of the longest declared prefix of ``name``."""
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"module {name} has no declared layer; add it to LAYERS")
    return rank


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def upward_edges(graph) -> list[str]:
    return sorted(f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
                  for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_every_module_has_a_layer():
    for name in module_files():
        layer_of(name)


def test_no_import_goes_up_a_layer():
    assert upward_edges(import_graph()) == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_observation_layer_uses_no_engine_private():
    graph_files = module_files()
    private = []
    for name, path in graph_files.items():
        if not name.startswith("exopk.observation"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("exopk.") \
                    and not (node.module or "").startswith("exopk.observation"):
                private += [f"{name}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_")]
    assert private == []


@pytest.mark.parametrize("source,expected", [
    ("from exopk.b import f\n", "cycle"),
    ("def g():\n    from exopk.b import f\n", "cycle"),
    ("from . import b\n", "cycle"),
])
def test_the_walk_finds_cycles_at_module_and_function_level(tmp_path, source, expected):
    package = tmp_path / "exopk"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(source)
    (package / "b.py").write_text("import exopk.a\n")
    assert cycles(import_graph(package)) == [["exopk.a", "exopk.b"]]


def test_the_walk_reads_lazy_exports_as_imports(tmp_path):
    package = tmp_path / "exopk"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "__init__.py").write_text(
        '_LAZY = {"simulate": "exopk.engine", **{n: "exopk.model.spec" for n in ("a",)}}\n')
    (package / "model" / "spec.py").write_text("")
    (package / "engine.py").write_text("")
    assert upward_edges(import_graph(package)) == [
        "exopk.model (layer 2) imports exopk.engine (layer 5)"]


def test_the_walk_finds_an_upward_edge(tmp_path):
    package = tmp_path / "exopk"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "__init__.py").write_text("")
    (package / "model" / "spec.py").write_text("def f():\n    from exopk.engine import x\n")
    (package / "engine.py").write_text("")
    assert upward_edges(import_graph(package)) == [
        "exopk.model.spec (layer 2) imports exopk.engine (layer 5)"]
