"""The import graph of src/ and hydra_plugins/, read from the source with `ast` (nothing is
imported or run): no module reaches itself through imports, and within a package no two
modules import each other. Imports inside functions count: a deferred import is still an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

PACKAGES = ("src", "hydra_plugins")


def module_name(path: Path, root: Path) -> str:
    """src/report/grid.py -> src.report.grid; src/report/__init__.py -> src.report."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    """Every module under the packages, by its dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def import_nodes(tree: ast.Module, deferred: bool = True) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of a module: anywhere in it, or (deferred=False) those run when
    it is imported: not in a function's body, nor under `if TYPE_CHECKING:`."""
    if deferred:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return found


def imported(
    name: str, path: Path, known: dict[str, Path], deferred: bool = True, external: bool = False
) -> set[str]:
    """The modules of `known` that the module `name` (its file `path`) imports, anywhere in it
    (deferred=False: at its top only, see import_nodes); external: the other modules too, by
    their top-level package (torch, matplotlib, ...).

    `from a.b import c` is an edge to a.b.c when that is a module, else to a.b (c a name in
    it); a relative import is resolved against the module's package.
    """
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in import_nodes(tree, deferred):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                where = ".".join([*base, *([node.module] if node.module else [])])
            else:
                where = node.module
            for alias in node.names:
                targets.add(f"{where}.{alias.name}" if f"{where}.{alias.name}" in known else where)
    edges = set()
    for target in targets:
        outside = target.split(".")[0]
        while target and target not in known:  # `import a.b.c` of a name below a module
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
        elif not target and external and outside not in PACKAGES:
            edges.add(outside)
    return edges


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imported(name, path, known) for name, path in known.items()}


def loaded_on_import(module: str, root: Path = ROOT) -> set[str]:
    """Every module, ours and others' (by top-level package), that importing `module` loads:
    its top-level imports, then theirs, and so on; deferred imports are left out."""
    known = modules(root)
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in known:
            todo.extend(imported(name, known[name], known, deferred=False, external=True))
    return seen


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, str] = {}  # "open": on the current path; "done": no cycle through it
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def mutual_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of modules of one package that import each other."""
    return sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a < b and a in graph.get(b, ()) and a.rpartition(".")[0] == b.rpartition(".")[0]
    )


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert {"src.train", "src.report.grid", "src.report.layout", "src.report.views"} <= set(graph)
    assert any(name.startswith("hydra_plugins.") for name in graph)
    # Absolute, `from package import module` and deferred (in a function) imports all count.
    assert "src.report.layout" in graph["src.report.grid"]
    assert "src.report.figures" in graph["src.report.views"]
    assert "src.report.views" in graph["src.report.grid"]  # draw()'s deferred import
    # Drawing stays out of the page's module: views, and torch with it, only through draw().
    assert "src.report.grid" not in graph["src.report.views"]
    assert "src.report.grid" not in graph["src.report.layout"]


def test_no_module_imports_itself_through_others():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_two_modules_of_a_package_import_each_other():
    pairs = mutual_imports(import_graph())
    named = ", ".join(f"{a} <-> {b}" for a, b in pairs)
    assert not pairs, f"modules that import each other: {named}"


DRAWING = {"torch", "matplotlib", "pytorch_lightning", "src.report.views", "src.report.figures"}


def test_the_sweeps_main_process_lays_out_its_report_without_drawing():
    # What the sweep's main process imports (the report callback, the page, the layout) loads
    # neither torch nor matplotlib: the views are drawn by whoever runs grid.draw().
    for module in ("src.report.callback", "src.report.grid", "src.report.layout"):
        loaded = loaded_on_import(module)
        assert "src.report.layout" in loaded and "omegaconf" in loaded  # the walk goes deep
        assert not loaded & DRAWING, (module, sorted(loaded & DRAWING))
    assert {"torch", "matplotlib", "src.report.figures"} <= loaded_on_import("src.report.views")


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_is_found_and_named(tmp_path):
    root = write(
        tmp_path,
        {
            "src/__init__.py": "",
            "src/report/__init__.py": "",
            "src/report/grid.py": "if TYPE_CHECKING:\n    import torch\n"
            "def draw():\n    from src.report import views\n",
            "src/report/views.py": "from .layout import Report\nfrom src.report.grid import x\n",
            "src/report/layout.py": "import src.run.files\n",
            "src/run/__init__.py": "",
            "src/run/files.py": "import os\nfrom ..report.grid import draw\n",
            "hydra_plugins/plug/__init__.py": "from . import sweeper\n",
            "hydra_plugins/plug/sweeper.py": "from hydra_plugins.plug import sweeper as s\n",
        },
    )
    graph = import_graph(root)
    assert graph["src.report.grid"] == {"src.report.views"}
    assert graph["src.report.views"] == {"src.report.layout", "src.report.grid"}
    assert graph["src.run.files"] == {"src.report.grid"}  # os is not one of ours
    assert graph["hydra_plugins.plug"] == {"hydra_plugins.plug.sweeper"}
    assert graph["hydra_plugins.plug.sweeper"] == set()  # itself is no edge
    assert find_cycle(graph) == ["src.report.grid", "src.report.views", "src.report.grid"]
    assert mutual_imports(graph) == [("src.report.grid", "src.report.views")]
    # The longer way round, through another package, is a cycle but not a mutual pair.
    graph["src.report.views"].discard("src.report.grid")
    assert find_cycle(graph) == [
        "src.report.grid",
        "src.report.views",
        "src.report.layout",
        "src.run.files",
        "src.report.grid",
    ]
    assert mutual_imports(graph) == []
    # On import: only what runs at the top, others' modules by their package.
    assert loaded_on_import("src.report.grid", root) == {"src.report.grid"}
    assert loaded_on_import("src.report.layout", root) == {
        "src.report.layout",
        "src.run.files",
        "os",
        "src.report.grid",
    }


def test_a_graph_without_cycles_passes():
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": set(), "p.d": {"p.a", "p.c"}}
    assert find_cycle(graph) is None and mutual_imports(graph) == []
