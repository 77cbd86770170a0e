"""The layout shows the architecture: identity, evaluation and the trainer are subpackages, and no project
module imports itself back through others (an import cycle), counting imports inside functions too."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "reid", "detectors", "configs")

SUBPACKAGES = {
    "pipeline.identity": {"stage", "tracklets", "gallery", "linker", "outputs", "relink", "record", "updates",
                          "duplicates", "ground", "handoff"},
    "pipeline.evaluation": {"evaluate", "metrics_mot", "metrics_hota", "mot_io"},
    "reid.trainer": {
        "config", "data", "model", "run", "check", "model_check", "memory", "losses", "pseudo_labels",
        "tracklet_labels", "patch", "occlusion",
    },
}  # fmt: skip
MOVED = (
    "pipeline.identity_outputs", "pipeline.tracklets", "pipeline.gallery", "pipeline.linker", "pipeline.metrics_mot",
    "pipeline.metrics_hota", "pipeline.mot_io", "reid.memory", "reid.losses", "reid.pseudo_labels",
    "reid.tracklet_labels", "reid.patch", "reid.occlusion", "reid.model_check", "reid.train_config", "reid.train_data",
    "reid.train_run", "reid.train_check", "reid.train_model",
)  # fmt: skip
ENTRY_MODULES = {"pipeline.relink": "pipeline.identity.relink", "pipeline.evaluate": "pipeline.evaluation.evaluate"}


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file of every module of the project packages (a package is its ``__init__.py``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` lives in: itself, or the nearest enclosing module (``pkg.mod.attr``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _from_base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


def _dynamic_names(tree: ast.AST) -> list[str]:
    """Module names a module imports through ``importlib.import_module``: every string constant that is a
    dotted name or a ``"module:attr"`` registry entry (the registries of reid.models and detectors)."""
    calls = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "import_module"
        for n in ast.walk(tree)
    )
    if not calls:
        return []
    return [
        n.value.split(":")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.split(".")[0] in PACKAGES
    ]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere in its file (module level, functions, TYPE_CHECKING)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: list[str] = _dynamic_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _from_base(module, path.name == "__init__.py", node)
                targets += [f"{base}.{alias.name}" for alias in node.names]  # a submodule, or an attribute of base
        owners = {_owner(t, modules) for t in targets if t.split(".")[0] in PACKAGES}
        graph[module] = owners - {None, module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
        ({"a": {"a"}}, ["a", "a"]),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    assert find_cycle(graph) == expected


def test_import_graph_sees_function_level_and_registry_imports(tmp_path: Path) -> None:
    (tmp_path / "reid").mkdir()
    (tmp_path / "reid" / "__init__.py").write_text("")
    (tmp_path / "reid" / "a.py").write_text("def f():\n    from reid import b\n")
    registry = "import importlib\nR = {'x': 'reid.c:make'}\n\n\ndef build(n):\n"
    registry += "    return importlib.import_module(R[n])\n"
    (tmp_path / "reid" / "b.py").write_text(registry)
    (tmp_path / "reid" / "c.py").write_text("from .a import f\n")
    graph = import_graph(project_modules(tmp_path))
    assert graph["reid.a"] == {"reid.b"} and graph["reid.b"] == {"reid.c"} and graph["reid.c"] == {"reid.a"}
    assert find_cycle(graph) == ["reid.a", "reid.b", "reid.c", "reid.a"]


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph(project_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("package", sorted(SUBPACKAGES))
def test_subpackage_holds_its_parts(package: str) -> None:
    folder = ROOT.joinpath(*package.split("."))
    assert (folder / "__init__.py").is_file()
    assert {p.stem for p in folder.glob("*.py")} - {"__init__"} == SUBPACKAGES[package]


@pytest.mark.parametrize("module", MOVED)
def test_moved_modules_left_no_copy(module: str) -> None:
    assert not ROOT.joinpath(*module.split(".")).with_suffix(".py").exists()


@pytest.mark.parametrize(("entry", "home"), sorted(ENTRY_MODULES.items()))
def test_entry_modules_run_the_moved_main(entry: str, home: str) -> None:
    assert importlib.import_module(entry).main is importlib.import_module(home).main
