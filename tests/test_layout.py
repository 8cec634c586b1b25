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
TOP = ("run", "api", "__main__", "__init__")  # entry points above every room
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


MAX_STAGE_PARAMETERS = 4


def test_no_function_of_the_stages_takes_more_than_four_parameters():
    """The stages share one RunContext (study.stages.context) instead of long argument
    lists: every parameter counts (positional, keyword-only, *args, **kwargs), but a
    method's `self` or `cls`."""
    wide = []
    for path in sorted((STUDY / "stages").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = node.args
            names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
            if names[:1] in (["self"], ["cls"]):
                names = names[1:]
            if len(names) > MAX_STAGE_PARAMETERS:
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                wide.append(f"{where}: {len(names)} parameters ({', '.join(names)})")
    assert not wide, "\n".join(wide)


# --- ownership claims of docs/architecture.md, checked --------------------------------------

TRACKING = STUDY / "tracking"


def outside_tracking() -> list[Path]:
    return [p for p in sorted(STUDY.rglob("*.py")) if TRACKING not in p.parents]


def runtime_imports(tree: ast.AST) -> set[str]:
    """Top-level package names imported at run time (imports under `if TYPE_CHECKING:`,
    for annotations only, left out)."""
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for child in node.body
        for n in ast.walk(child)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
    return found


def test_only_study_tracking_imports_mlflow_and_calls_its_client():
    """'study/tracking/ owns every MLflow read and write': elsewhere a client is only handed
    on to study.tracking's functions, never asked itself."""
    found = []
    for path in outside_tracking():
        tree = ast.parse(path.read_text())
        if "mlflow" in runtime_imports(tree):
            found.append(f"{path.relative_to(ROOT)} imports mlflow")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "client"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} client.{node.func.attr}()")
    assert not found, "\n".join(found)


# Compound names only (a plain word like "study" or "config" is also a dict key, a package,
# a prose word); these two are also keys of other records: the answer's JSON entry
# (freeze_frac, read from its tag) and Ray's result (node_ip, copied into its tag).
ALSO_OTHER_KEYS = {"freeze_frac", "node_ip"}


def mlflow_names() -> set[str]:
    """The compound tag, param, metric and artifact names study.tracking.names defines (the
    ones that are also Tune config keys or report names, trainables.contract's, left out)."""
    from study.tracking import names
    from trainables.contract import Key, Report

    prefixes = ("TAG_", "PARAM_", "METRIC_", "CONFIG_ARTIFACT", "PHASE_SECONDS_PREFIX")
    values = {
        value
        for name, value in vars(names).items()
        if name.startswith(prefixes) and isinstance(value, str) and any(c in value for c in "_.")
    }
    contract = {v for cls in (Key, Report) for v in vars(cls).values() if isinstance(v, str)}
    return values - contract - ALSO_OTHER_KEYS


def test_every_mlflow_name_is_written_in_tracking_names_only():
    names = mlflow_names()
    assert {"tuning_budget", "similarity_method", "study_state", "seconds_"} <= names
    found = []
    for path in sorted(STUDY.rglob("*.py")):
        if path == TRACKING / "names.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, "\n".join(found)


def test_a_bad_config_is_told_before_mlflow_and_ray_are_imported(tmp_path):
    """The claim of docs/architecture.md, as it stands: torch is imported (the architecture
    and strategy names are checked against their registries), MLflow and Ray are not."""
    import subprocess
    import sys

    (tmp_path / "bad.yaml").write_text("name: x\nsearch:\n  trials_per_label: 0\n")
    code = (
        "import sys\nfrom study.cli.commands import main\n"
        "code = main(['validate', '--config', 'bad.yaml'])\n"
        "print(code, sorted(m for m in ('mlflow', 'ray') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["2", "[]"], done.stdout + done.stderr
    assert "trials_per_label" in done.stderr
