"""Every command README.md shows runs as written, from the repo root with the venv active.

The commands are README's lines in ``` blocks and its inline `code` spans whose first word
is `python`, `study` or `make` (a `bench/<name>.py ...` span is `python bench/<name>.py ...`),
comments after `#` dropped. Each runs in a subprocess from the repo root with the venv's
bin first on PATH, but only as far as it is cheap to:

- `study ...`, `python -m study ...`, `python study/run.py ...` and each benchmark with an
  argument parser run as written up to their argument parsing and stop there (exit 0): a
  `sitecustomize` on PYTHONPATH makes `ArgumentParser.parse_args` parse strictly, then
  exit. (`--help` would not do: argparse prints help at `--help` and never sees a flag that
  does not exist before it.) So the imports of the command, its sub-command and its flags
  are what is checked; no study runs, no benchmark measures.
- a benchmark without an argument parser is imported as `python bench/<name>.py` would
  (bench/ first on sys.path, not the repo root), without running its main.
- `make <target>` as `make -n <target>` (a dry run).

README's placeholders: `[...]` around an optional flag is written out, `...` (the rest of a
command shown elsewhere) is dropped, or is `--help` where it is the whole of the arguments
(`python -m study ...`), `N` is a number.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the venv's bin: pytest runs in it
PROGRAMS = ("python", "study", "make")
PARSED = "readme-check: parsed"
PLACEHOLDERS = {"...": None, "N": "1"}  # README's placeholder -> what runs (None: dropped)

# Commands README shows that are not run here, each with its reason. (Only lines starting
# with `python`, `study` or `make` are commands of this test: `ray up cluster.yaml`, `ray
# submit ...`, `ray attach ...` and `mlflow ui ...` need a cluster or start a server, and are
# not collected at all; tests/test_cluster_launcher.py runs the `ray` ones.)
NOT_RUN_HERE: dict[str, str] = {}

PARSE_ONLY = textwrap.dedent(
    f"""
    import argparse

    _parse = argparse.ArgumentParser.parse_args


    def _parse_only(self, args=None, namespace=None):
        _parse(self, args, namespace)  # a flag that does not exist: exit 2
        print({PARSED!r}, self.prog, flush=True)
        raise SystemExit(0)


    argparse.ArgumentParser.parse_args = _parse_only
    """
)


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def readme_commands(text: str) -> list[str]:
    """README's shell commands, in order, each once (see the module's docstring)."""
    fence = re.compile(r"^```[^\n]*\n(.*?)^```[^\n]*$", re.MULTILINE | re.DOTALL)
    found = [_strip_comment(line) for block in fence.findall(text) for line in block.splitlines()]
    prose = fence.sub("", text)
    for span in re.findall(r"`([^`]+)`", prose):
        command = _strip_comment(" ".join(span.split()))  # a span may wrap over lines
        found.append(f"python {command}" if re.match(r"bench/\w+\.py", command) else command)
    commands = [c for c in found if c.split()[:1] and c.split()[0] in PROGRAMS]
    return list(dict.fromkeys(commands))


def argv_of(command: str) -> list[str]:
    """The command's words as they run: optional `[...]` written out, placeholders filled."""
    words = shlex.split(command.replace("[", " ").replace("]", " "))
    if words[-1] == "...":  # `python -m study ...`: any command of the program; its help
        return [*words[:-1], "--help"]
    return [PLACEHOLDERS.get(w, w) for w in words if PLACEHOLDERS.get(w, w) is not None]


def bench_script(argv: list[str]) -> Path | None:
    """bench/<name>.py when the command runs one."""
    if len(argv) > 1 and argv[0] == "python" and argv[1].startswith("bench/"):
        return ROOT / argv[1]
    return None


def runnable(command: str, hook: Path) -> tuple[list[str], dict[str, str]]:
    """The command line that checks `command` and its environment (`hook`: the folder of
    the parse-only sitecustomize)."""
    argv = argv_of(command)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(BIN.parent)}
    if argv[0] == "make":
        return ["make", "-n", *argv[1:]], env
    script = bench_script(argv)
    if script is not None and "ArgumentParser" not in script.read_text():
        # As `python bench/<name>.py` would: the script's folder first on sys.path, no root.
        code = (
            f"import runpy, sys; sys.path[0] = {str(script.parent)!r}; "
            f"runpy.run_path({str(script)!r}, run_name='readme_check'); print({PARSED!r})"
        )
        return ["python", "-c", code], env
    return argv, env | {"PYTHONPATH": str(hook)}


def covered(command: str, commands: list[str]) -> bool:
    """Whether another command runs this one's words and more (`study run` by `study run
    --preset default`): checking the longer one checks this one."""
    argv = argv_of(command)
    return any(len(a) > len(argv) and a[: len(argv)] == argv for a in map(argv_of, commands))


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))
TO_RUN = [c for c in COMMANDS if c not in NOT_RUN_HERE and not covered(c, COMMANDS)]


def test_every_bench_script_readme_names_has_its_command():
    named = set(re.findall(r"\bbench/(\w+\.py)\b", README.read_text(encoding="utf-8")))
    scripts = {p.name for p in (ROOT / "bench").glob("*.py") if "__main__" in p.read_text()}
    assert named & scripts, "README names no benchmark script"
    commanded = {script.name for c in COMMANDS if (script := bench_script(argv_of(c)))}
    assert named & scripts <= commanded, f"named but no command: {(named & scripts) - commanded}"
    assert commanded <= scripts, f"commands of no script in bench/: {commanded - scripts}"


def test_the_commands_cover_study_and_make():
    programs = {argv_of(c)[0] for c in COMMANDS}
    assert programs == set(PROGRAMS), COMMANDS
    assert "study run --preset default" in COMMANDS and "make demo" in COMMANDS, COMMANDS
    assert not set(NOT_RUN_HERE) - set(COMMANDS), "allow-listed but no longer in README"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every command's check, run 3 at a time (most of their time is importing torch)."""
    hook = tmp_path_factory.mktemp("parse_only")
    (hook / "sitecustomize.py").write_text(PARSE_ONLY)

    def check(command: str) -> subprocess.CompletedProcess:
        argv, env = runnable(command, hook)
        return subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(TO_RUN, pool.map(check, TO_RUN), strict=True))


@pytest.mark.parametrize("command", TO_RUN)
def test_readme_command_runs_as_written(command, outcomes):
    done = outcomes[command]
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    if argv_of(command)[-1] == "--help":
        assert done.stdout.startswith("usage:"), f"{command}: {done.stdout[-2000:]}"
    elif not command.startswith("make"):
        assert PARSED in done.stdout, f"{command}: never reached its argument parsing"
