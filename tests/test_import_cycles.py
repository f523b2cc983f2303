"""No import cycle among trace/'s modules, counting imports made inside functions and for type checking.

A cycle hidden in a function body still ties the modules together: each needs the other loaded to work,
and a reader (or mypy, when the way back is typed ``Any``) cannot follow it. ``if TYPE_CHECKING:`` imports
count too: they do not run, but the modules still depend on each other's shapes.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path = ROOT) -> str:
    """trace/events/models.py → trace.events.models; a package's __init__ names the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: str = "trace", root: Path = ROOT) -> dict[str, set[str]]:
    """Every module of ``package`` → the modules of ``package`` it imports, anywhere in its body."""
    paths = {module_name(p, root): p for p in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # "from trace.events import models" depends on the submodule; a name that is not a submodule
                # ("from trace.portal import export_zip") depends on the package's own __init__
                subs = [f"{source}.{alias.name}" for alias in node.names]
                targets = [sub for sub in subs if sub in paths]
                if len(targets) < len(subs):
                    targets.append(source)
            for target in targets:
                # "import trace.events.models" loads the packages on the way; the edge that matters is the leaf
                if target in paths and target != name and target != package:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One import path round ``component`` (a strongly connected component), first module repeated at its end."""
    inside = set(component)
    path, seen = [component[0]], {component[0]: 0}
    while True:
        # every module of a component imports another of it: following any such edge comes back round
        step = min(graph[path[-1]] & inside)
        if step in seen:
            return [*path[seen[step] :], step]
        seen[step] = len(path)
        path.append(step)


def explained(graph: dict[str, set[str]]) -> str:
    """Each cycle as the import path a reader can follow, with the other modules caught in it."""
    lines = []
    for component in cycles(graph):
        lines.append(" → ".join(a_cycle(graph, component)) + f"  (tied together: {', '.join(component)})")
    return "\n".join(lines)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert cycles({"a": {"b"}, "b": set()}) == []
    # a walk that closes on a module after its start: the path printed is the closed loop, not the way in
    graph = {"a": {"b"}, "b": {"c"}, "c": {"b", "d"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "d"]]
    assert a_cycle(graph, ["a", "b", "c", "d"]) == ["b", "c", "b"]


def test_the_graph_sees_imports_at_the_top_inside_functions_and_for_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.sub import thing\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "thing.py").write_text("def f():\n    from pkg import other\n")
    (package / "other.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub import thing\n"
    )
    graph = import_graph("pkg", root=tmp_path)
    assert graph == {
        "pkg": {"pkg.sub.thing"},
        "pkg.sub": set(),
        "pkg.sub.thing": {"pkg.other"},
        "pkg.other": {"pkg.sub.thing"},
    }
    assert cycles(graph) == [["pkg.other", "pkg.sub.thing"]]


def test_no_import_cycle_among_trace_modules() -> None:
    graph = import_graph()
    assert not cycles(graph), "import cycles in trace/:\n" + explained(graph)
