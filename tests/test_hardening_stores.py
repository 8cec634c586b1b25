"""Store URLs checked before anything is written (scheme, driver, reachability), a silent
server failing fast with one line naming its host, and `study ui` run for real."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from study.stores.checks import TIMEOUT_S, url_problem
from tests.conftest import STUDY, cli_env, run_cli
from tests.postgres_server import free_port
from tests.test_hardening_config import assert_refused, files_under

SMOKE = {"name": "stores", "target": {"sizes": [1], "seeds": 1}}
# case -> (stores in the config, environment, texts the one line must hold)
CASES = {
    "garbage optuna": ({"optuna": "garbage"}, {}, ["stores.optuna 'garbage'", "allowed:"]),
    "garbage in env": ({}, {"STUDY_MLFLOW_DB": "garbage"}, ["STUDY_MLFLOW_DB 'garbage'"]),
    "http for optuna": (
        {"optuna": "http://127.0.0.1:5000"},
        {},
        ["stores.optuna", "sqlite:///<file>, postgresql://"],
    ),
    "mysql without driver": (
        {},
        {"STUDY_OPTUNA_DB": "mysql://study:pw@127.0.0.1/optuna"},
        ["STUDY_OPTUNA_DB 'mysql://study:***@127.0.0.1/optuna'", "driver is not installed"],
    ),
    "unencoded @": (
        {},
        {"STUDY_OPTUNA_DB": "postgresql://study:a@b@127.0.0.1/optuna"},
        ["cannot be parsed", "%40"],
    ),
    "port out of range": (
        {},
        {"STUDY_MLFLOW_DB": "postgresql://study:pw@127.0.0.1:99999/mlflow"},
        ["port 99999 is out of range"],
    ),
    "nobody listening": (
        {},
        {"STUDY_OPTUNA_DB": "postgresql://study:pw@127.0.0.1:1/optuna"},
        ["cannot reach the postgresql server at 127.0.0.1:1"],
    ),
    "sqlite folder missing": (
        {"mlflow": "sqlite:///no/such/mlflow.db"},
        {},
        ["the folder no/such of the SQLite file does not exist"],
    ),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_store_is_one_line_before_anything_is_written(workdir, cli_in_process, case, command):
    stores, env, expected = CASES[case]
    (workdir / "study.yaml").write_text(yaml.safe_dump({**SMOKE, "stores": stores}))
    done = cli_in_process([command, "--config", "study.yaml"], env=env)
    assert_refused(done, expected)
    assert "pw" not in done.stderr
    assert files_under(workdir) == {"study.yaml"}


@pytest.mark.parametrize("url", ["garbage", "postgresql://study:pw@127.0.0.1:1/mlflow"])
def test_best_freeze_refuses_a_bad_tracking_store(workdir, cli_in_process, url):
    done = cli_in_process(["best-freeze", "--tracking-uri", url])
    assert_refused(done, ["--tracking-uri"])
    done = cli_in_process(["best-freeze"], env={"STUDY_MLFLOW_DB": url})
    assert_refused(done, ["STUDY_MLFLOW_DB"])
    assert files_under(workdir) == set()


@contextlib.contextmanager
def silent_server():
    """A port that accepts connections and never answers: a hung database or server."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.parametrize("scheme", ["postgresql", "http"])
def test_a_silent_server_fails_within_15_s_naming_its_host(scheme):
    with silent_server() as port:
        started = time.monotonic()
        problem = url_problem("mlflow", f"{scheme}://study:pw@127.0.0.1:{port}/mlflow")
        took = time.monotonic() - started
    assert problem is not None and f"127.0.0.1:{port}" in problem and "pw" not in problem
    assert took < 15 and took >= TIMEOUT_S - 1  # it waited for the answer, then gave up


# --- study ui ------------------------------------------------------------------------------


def test_ui_in_an_empty_folder_refuses_and_creates_no_store(workdir):
    done = run_cli(["ui"], cwd=workdir)
    assert_refused(done, ["no MLflow store at mlflow.db"])
    assert files_under(workdir) == set()


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found += [line] if text in line else []
    return found


def test_ui_runs_without_mlflow_on_path_and_dies_with_sigterm(workdir):
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    MlflowClient(tracking_uri=store).create_experiment("visible-study")
    port = free_port()
    env = cli_env({"PATH": "/usr/bin:/bin", "STUDY_MLFLOW_DB": store})  # no venv on PATH
    ui = subprocess.Popen(
        [sys.executable, *STUDY[1:], "ui", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search"
                body = urllib.request.urlopen(f"{url}?max_results=10", timeout=2).read()
                break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, ui.stdout.read()
                time.sleep(1)
        assert b"visible-study" in body  # the study store, passed in the environment
        assert not _processes_mentioning(store)  # ... and on no process list
        assert _processes_mentioning(f"--port {port}")
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=30) == 143
        time.sleep(1)
        assert not _processes_mentioning(f"--port {port}"), "the MLflow UI outlived `study ui`"
    finally:
        if ui.poll() is None:
            ui.kill()
