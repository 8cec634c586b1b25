"""Bad input: one line naming the problem and the allowed values, exit 2, nothing written."""

from __future__ import annotations

import pytest
import yaml
from mlflow.tracking import MlflowClient

from study.config.files import preset_names
from tests.conftest import ROOT, run_cli

CASES = {
    "unknown architecture": (
        {"search": {"architectures": ["lenet5", "vgg99"]}},
        ["unknown architecture 'vgg99'", "did you mean vgg19?", "`study archs` lists all"],
    ),
    "unknown architecture, nothing close": (
        {"search": {"architectures": ["lenet5", "efficientnet_b0"]}},
        ["unknown architecture 'efficientnet_b0'", "registered:", "lenet5"],
    ),
    "unknown key": (
        {"search": {"trails_per_label": 3}},
        ["unknown config key `search.trails_per_label`", "allowed here:", "trials_per_label"],
    ),
    "size larger than the data": (
        {"target": {"sizes": [1, 500]}},
        ["500 examples per class", "allowed: 1..", "or 'all'"],
    ),
    "negative learning rate": (
        {"search": {"lr": {"low": -0.01, "high": 0.1}}},
        ["`search.lr.low`", "greater than 0", "-0.01"],
    ),
    "unknown strategy": (
        {"search": {"strategies": ["finetune", "freeze-everything"]}},
        [
            "`search.strategies.1`",
            "'scratch', 'finetune', 'freeze-b', 'linear-probe', 'lp-ft', 'logreg', 'svm' or 'knn'",
        ],
    ),
    "unknown dataset": (
        {"target": {"dataset": "mnist"}},
        ["`target.dataset`", "unknown target dataset 'mnist'", "imagefolder:<path>"],
    ),
    "more confirm candidates than searched configurations": (
        {"search": {"trials_per_label": 2, "confirm_candidates": [{"candidates": 3}]}},
        ["confirm_candidates: 3 per label", "searches 2", "candidates must be 1..2"],
    ),
    "missing image folder": (
        {"target": {"dataset": "imagefolder:no/such/folder"}},
        ["imagefolder: no/such/folder does not exist"],
    ),
}


@pytest.fixture
def store(workdir):
    """An existing study store, to check that bad input adds nothing to it."""
    # An absolute URI: MLflow caches stores by URI, and each test has its own folder.
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    client.create_experiment("earlier-study")
    return client


def all_runs(client: MlflowClient) -> int:
    ids = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(ids))


def assert_one_line_exit_2(done, expected: list[str]) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_exits_2_with_one_line_and_writes_nothing(store, workdir, cli_in_process, case):
    data, expected = CASES[case]
    (workdir / "study.yaml").write_text(yaml.safe_dump({"name": "bad", **data}))
    before = all_runs(store)
    done = cli_in_process(["run", "--config", "study.yaml"])
    assert_one_line_exit_2(done, expected)
    assert all_runs(store) == before
    assert store.get_experiment_by_name("bad") is None
    assert not (workdir / "optuna.db").exists()
    assert not (workdir / "ray_results").exists()


def test_unknown_preset_lists_the_presets(workdir):
    done = run_cli(["run", "--preset", "nope"], cwd=workdir)
    assert {"default", "smoke", "gpu-cluster"} <= set(preset_names())
    assert_one_line_exit_2(done, ["unknown preset 'nope'", f"allowed: {', '.join(preset_names())}"])
    assert not (workdir / "mlflow.db").exists() and not (workdir / "optuna.db").exists()


def test_bad_cli_argument_names_the_choices(workdir):
    done = run_cli(["best-freeze", "--format", "xml"], cwd=workdir)
    assert_one_line_exit_2(done, ["invalid choice: 'xml'", "table", "json"])


def test_best_freeze_without_a_store_says_so_and_creates_none(workdir):
    done = run_cli(["best-freeze"], cwd=workdir)
    assert_one_line_exit_2(done, ["no MLflow store at mlflow.db", "study run"])
    assert not (workdir / "mlflow.db").exists()


def test_missing_config_file(workdir):
    done = run_cli(["run", "--config", "absent.yaml"], cwd=workdir)
    assert_one_line_exit_2(done, ["config file absent.yaml does not exist"])


def test_python_dash_m_study_works_like_the_study_command():
    import sys

    done = run_cli(
        ["validate", "--preset", "smoke"], cwd=ROOT, command=[sys.executable, "-m", "study"]
    )
    assert done.returncode == 0, done.stderr
    assert "valid study config (smoke)" in done.stdout


def test_an_unknown_experiment_names_only_close_studies(store, workdir):
    store.create_experiment("glyphs-to-digits")
    store.create_experiment("payroll-forecast")  # someone else's study in a shared store
    done = run_cli(["best-freeze", "--experiment", "glyphs-to-digit"], cwd=workdir)
    assert_one_line_exit_2(done, ["no experiment named 'glyphs-to-digit'", "glyphs-to-digits"])
    assert "payroll" not in done.stderr and "earlier-study" not in done.stderr
    done = run_cli(["best-freeze", "--experiment", "zzz"], cwd=workdir)
    assert_one_line_exit_2(done, ["no experiment named 'zzz'", "no name close to it"])
    assert "payroll" not in done.stderr
