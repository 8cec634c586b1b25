"""Shared fixtures: a throw-away working folder and the CLI run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.postgres_server import postgres  # noqa: F401  (a session fixture)
from tests.smoke_study import smoke  # noqa: F401  (a session fixture: the smoke study, once)

ROOT = Path(__file__).resolve().parent.parent
STUDY = [sys.executable, str(ROOT / "study" / "run.py")]


def cli_env(
    extra: dict[str, str] | None = None,
    drop: tuple[str, ...] = ("MLFLOW_", "STUDY_", "RAY_ADDRESS"),
) -> dict[str, str]:
    """This environment without what points the CLI at somebody else's stores or Ray cluster
    (the variables starting with `drop`), plus `extra`."""
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | (extra or {})


def run_cli(
    args: list[str],
    cwd: Path,
    timeout: float = 600,
    command: list[str] = STUDY,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`python study/run.py ARGS` (or `command` ARGS) in `cwd`, the way `study ...` runs
    on a user's machine, with `env` added to a clean environment (cli_env)."""
    return subprocess.run(
        command + args, cwd=cwd, env=cli_env(env), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli_in_process(workdir, monkeypatch, capsys):
    """`study ARGS` in `workdir` as the function the command runs (study.cli.commands.main), in this
    process, with `env` added to a clean environment: the same exit code and output as
    run_cli without a new interpreter importing torch, MLflow and Ray (seconds) per call;
    for the long tables of bad input. run_cli stays the command as users run it."""
    from study.cli.commands import main

    def call(args: list[str], env: dict[str, str] | None = None):
        for name in set(os.environ) - set(cli_env()):
            monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()  # what the test printed setting up (a store's log lines) is not the command's
        try:
            code = main(args)
        except SystemExit as exit_:  # argparse's errors
            code = exit_.code
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["study", *args], code, out.out, out.err)

    return call


@pytest.fixture(scope="session")
def digits():
    """The digits target with small validation and test sets, for trainable-level tests."""
    from trainables.datasets import load_target

    return load_target("digits", val_per_class=10, test_per_class=20)


@pytest.fixture(scope="module")
def one_thread():
    """Small inputs gain nothing from intra-op threads; and when another process keeps a
    core busy, OpenMP's thread barriers make every op wait for it (100x slower on 2 cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
