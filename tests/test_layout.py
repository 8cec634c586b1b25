"""The driver's rooms: study/ is subpackages in layers, imports only point down or sideways
within a room, no module imports itself back through a cycle, and no module or function
outgrows what a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "study"
# Lowest first: a room may import from its own and from the rooms before it, never after.
LAYERS = ("errors", "stores", "config", "tracking", "tuning", "answer", "stages", "cli")
TOP = ("run", "__main__", "__init__")  # entry points above every room
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def study_imports(path: Path) -> set[str]:
    """Every study module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "study":
                found |= {f"study.{alias.name}" for alias in node.names}
            elif node.module.startswith("study."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("study.")}
    return found


def room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(STUDY.rglob("*.py"))}


def test_every_module_of_study_is_in_a_room():
    homeless = [m for m in modules() if room(m) not in LAYERS + TOP]
    assert not homeless, f"modules outside the rooms {LAYERS}: {homeless}"


def test_imports_point_down_the_layers():
    upward = []
    for name, path in modules().items():
        here = room(name)
        if here in TOP:
            continue
        for target in study_imports(path):
            there = room(target)
            if there in TOP or LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{name} imports {target}")
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = {name: {t for t in study_imports(p) if t in modules()} for name, p in modules().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("package", ["study", "trainables", "search_spaces"])
def test_no_module_over_300_lines_and_no_function_over_60(package):
    long = []
    for path in sorted((ROOT / package).rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length}")
    assert not long, "\n".join(long)
