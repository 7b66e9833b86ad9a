"""The import graph of medops, read from the source with ast: which unit (a subpackage such as
``registry``, or a top-level module such as ``config``) imports which at module level."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import medops

PACKAGE = Path(medops.__file__).parent


def _unit(module: str) -> str | None:
    """``medops.registry.service`` -> ``registry``; ``medops.config`` -> ``config``."""
    parts = module.split(".")
    if parts[0] != "medops" or len(parts) < 2:
        return None
    return parts[1]


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level_imports(tree: ast.Module, module: str) -> Iterator[str]:
    """Modules imported when ``module`` is imported: module-level statements, outside
    ``if TYPE_CHECKING:`` blocks (imports inside functions run later, on use)."""
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If):
            test = node.test
            if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                stack.extend(node.orelse)
                continue
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                stack.extend(handler.body)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def unit_graph() -> dict[str, set[str]]:
    """unit -> the other units it imports at module level."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = _module_name(path)
        source = _unit(module) if module != "medops" else None
        if source is None:
            continue
        graph.setdefault(source, set())
        for imported in _top_level_imports(ast.parse(path.read_text()), module):
            target = _unit(imported)
            if (
                target is not None
                and target != source
                and (PACKAGE / target).exists() | (PACKAGE / f"{target}.py").exists()
            ):
                graph[source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan), each sorted."""
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
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
