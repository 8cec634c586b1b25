"""The smoke study end to end on the real parts: Ray, Optuna RDB storage, MLflow on SQLite.

The study is run once per session (tests/smoke_study.py, the `smoke` fixture).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from study.config.files import load_preset
from study.stages.context import search_labels
from study.stages.search import search_budget
from study.tracking import client as t
from study.tuning import progress
from study.tuning.progress import PROGRESS_EVERY_S, PhaseProgress
from tests.conftest import run_cli

pytestmark = pytest.mark.ray
SMOKE = load_preset("smoke")
LABELS = search_labels(SMOKE)
SEARCH_TRIALS = search_budget(SMOKE, LABELS)


def child_runs(client: MlflowClient, parent_id: str):
    experiment = client.get_experiment_by_name("smoke")
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent_id}'"
    )


def test_run_prints_progress_the_answer_and_how_to_open_the_ui(smoke):
    _, done, _ = smoke
    lines = done.stdout.splitlines()
    # A line per phase, saying what it runs and how many trials.
    assert any(line.startswith(f"search phase: {SEARCH_TRIALS} trials") for line in lines)
    assert any(line.startswith("confirm phase: ") for line in lines)
    # Progress with the estimated time left, then each phase's closing line.
    for phase in ("search", "confirm"):
        progress = [line for line in lines if line.startswith(f"[{phase}] ")]
        assert re.search(
            r"trials done, best val_acc 0\.\d{3} .* elapsed, about .* left", progress[0]
        )
        assert re.fullmatch(rf"\[{phase}\] \d+/\d+ trials done in .*", progress[-1])
    assert "Number of trials" not in done.stdout  # Ray's trial table is for --verbose
    assert "Best freeze strategy per target dataset size" in done.stdout
    # How to open the UI on the study: `study ui`, then the model-training view's URLs.
    assert "Browse every trial in the MLflow UI: study ui, then open" in done.stdout
    assert re.search(
        r"http://127\.0\.0\.1:5000/#/experiments/\d+\?workflowType=machine_learning", done.stdout
    )
    assert re.search(
        r"/#/experiments/\d+/runs/[0-9a-f]{32}\?workflowType=machine_learning", done.stdout
    )
    assert "trial slots spent training: " in done.stdout


def test_the_time_left_counts_trial_time_not_the_phase_start_up(monkeypatch):
    """A phase's first minute can go to starting workers and shipping the datasets; the
    estimate runs from the first result of any trial, so that minute is not taken as the
    first trial's duration (which made the default study's first estimate 2h59m)."""
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    phase = PhaseProgress("search", 101)
    trial = SimpleNamespace(
        status="TERMINATED",
        last_result={"val_acc": 0.5},
        config={"size": 1, "arch": "cnn4", "strategy": "finetune", "freeze": 0, "seed": 0},
    )
    now[0] = 60.0  # start-up over: the first report of a trial arrives
    phase.on_trial_result(0, [trial], trial, trial.last_result)
    now[0] = 70.0
    line = phase.progress_line([trial], now[0])
    assert line.endswith("1m10s elapsed, about 16m40s left"), line  # 10 s a trial x 100


def test_terminal_output_grows_with_time_not_with_trials(smoke):
    """Every line but the progress lines is fixed per study (a line per phase, per
    pretraining epoch, per size of the answer); progress lines come at most every
    PROGRESS_EVERY_S seconds, plus the first estimate and the closing line of each phase.
    So the default study (5 sizes, 2 architectures, about 10 minutes, 1100 trials) prints
    about 25 fixed lines and 25 progress lines, far under 300 (Ray's table: about 650)."""
    _, done, _ = smoke
    lines = (done.stdout + done.stderr).splitlines()
    progress = [line for line in lines if line.startswith(("[search] ", "[confirm] "))]
    seconds = re.search(r"search (\d+) s, confirm (\d+) s", done.stdout).groups()
    allowed = sum(2 + int(s) // PROGRESS_EVERY_S + 1 for s in seconds)
    assert 4 <= len(progress) <= allowed
    fixed = len(lines) - len(progress)
    sizes, looks = len(SMOKE.target.sizes), len(SMOKE.answer.looks_for(SMOKE.target.seeds))
    plan = 2 + 6 + 2  # the plan's line; its error: a line, one per phase, one per phase of trials
    race = looks * (1 + sizes) + 2 + sizes  # per round a line and one per size; what to use
    assert fixed <= 25 + sizes + plan + race, "\n".join(lines)
    assert not [line for line in lines if "trial " in line and "finished" in line]  # --verbose


def test_mlflow_has_one_parent_and_one_child_per_trial(smoke):
    work, _, client = smoke
    experiment = client.get_experiment_by_name("smoke")
    parents = client.search_runs([experiment.experiment_id], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # Opens in MLflow 3's model-training view, not the GenAI one.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    children = child_runs(client, parents[0].info.run_id)
    search = [r for r in children if r.data.tags[t.TAG_PHASE] == "search"]
    confirm = [r for r in children if r.data.tags[t.TAG_PHASE] == "confirm"]
    assert len(search) == SEARCH_TRIALS
    assert len(confirm) == len(LABELS) * len(SMOKE.target.sizes) * SMOKE.target.seeds
    ray_trials = list((work / "ray_results").glob("*/tune_trial_*"))
    assert len(children) == len(ray_trials)
    for run in children:
        tags, params = run.data.tags, run.data.params
        for tag in (
            t.TAG_SIZE,
            t.TAG_SEED,
            t.TAG_STRATEGY,
            t.TAG_FREEZE_BOUNDARY,
            t.TAG_FREEZE_FRAC,
            t.TAG_TRIAL_ID,
        ):
            assert tag in tags, tag
        assert {"arch", "strategy", "freeze", "lr", "backbone_lr_mult"} <= set(params)
        assert run.info.status == "FINISHED"
        assert t.METRIC_VAL_ACC in run.data.metrics
    for run in confirm:
        assert {t.METRIC_TEST_ACC, t.METRIC_TRAIN_SECONDS, t.METRIC_TRAINABLE_PARAMS} <= set(
            run.data.metrics
        )
        assert run.data.tags[t.TAG_TRIAL_STATE] == "completed"
        assert run.data.tags[t.TAG_DEVICE] == "cpu"  # what it trained on (no GPU here)
        history = client.get_metric_history(run.info.run_id, t.METRIC_VAL_ACC)
        assert [m.step for m in history] == list(range(1, SMOKE.training.reports + 1))
    frozen = [r for r in confirm if r.data.tags[t.TAG_STRATEGY] == "linear-probe"]
    assert frozen and all(r.data.tags[t.TAG_FREEZE_FRAC] == "1.000" for r in frozen)


def test_optuna_has_one_study_per_size_and_label_with_every_trial_told(smoke):
    work, _, _ = smoke
    storage = f"sqlite:///{work / 'optuna.db'}"
    summaries = optuna.get_all_study_summaries(storage)
    assert len(summaries) == len(SMOKE.target.sizes) * len(LABELS)
    assert {s.study_name.rsplit(".", 1)[-1] for s in summaries} == {lb.name for lb in LABELS}
    states = [
        trial.state.name
        for summary in summaries
        for trial in optuna.load_study(study_name=summary.study_name, storage=storage).trials
    ]
    assert len(states) == SEARCH_TRIALS and set(states) <= {"COMPLETE", "PRUNED"}


def test_confirm_covers_every_freeze_boundary_of_every_architecture(smoke):
    """b = 0 (finetune) through B (linear-probe), each boundary a label of its own, plus
    scratch: every one confirmed on every seed at every size."""
    _, _, client = smoke
    experiment = client.get_experiment_by_name("smoke")
    (parent,) = client.search_runs([experiment.experiment_id], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    confirm = [
        r for r in child_runs(client, parent.info.run_id) if r.data.tags[t.TAG_PHASE] == "confirm"
    ]
    stages = 4  # lenet5
    boundaries = {
        int(r.data.tags[t.TAG_FREEZE_BOUNDARY])
        for r in confirm
        if r.data.tags[t.TAG_STRATEGY] != "scratch"
    }
    assert boundaries == set(range(stages + 1))
    labels = {r.data.tags[t.TAG_STRATEGY_LABEL] for r in confirm}
    assert labels == {"scratch", "finetune", "freeze-1", "freeze-2", "freeze-3", "linear-probe"}
    per_label = {
        lb: [r for r in confirm if r.data.tags[t.TAG_STRATEGY_LABEL] == lb] for lb in labels
    }
    assert {len(runs) for runs in per_label.values()} == {SMOKE.target.seeds}
    assert parent.data.params["search_trials"] == str(SEARCH_TRIALS)
    assert (
        "1 trials per (size, architecture, strategy label)" in parent.data.params["tuning_budget"]
    )
    assert {"seconds_pretrain", "seconds_search", "seconds_confirm"} <= set(parent.data.metrics)
    assert 0 < parent.data.metrics[t.METRIC_TRAINING_SHARE] <= 1


def test_best_freeze_json_has_one_entry_per_size(smoke):
    work, _, _ = smoke
    done = run_cli(["best-freeze", "--format", "json"], cwd=work)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [a["size"] for a in answer] == [str(s) for s in SMOKE.target.sizes]
    assert answer[0]["best"]["strategy"] and 0 <= answer[0]["best"]["test_acc"] <= 1
    ranking = answer[0]["ranking"]
    assert {(e["arch"], e["strategy"]) for e in ranking} == {(lb.arch, lb.name) for lb in LABELS}
    for entry in ranking:
        assert len(entry["per_seed"]) == SMOKE.target.seeds
        assert {"test_acc", "ci95", "freeze", "top_group", "vs_best"} <= set(entry)
    assert ranking[0]["vs_best"] is None and all(e["vs_best"] for e in ranking[1:])
    assert answer[0]["best"]["strategy"] in " ".join(answer[0]["top_group"])
    named = run_cli(["best-freeze", "--experiment", "smoke"], cwd=work)
    assert named.returncode == 0 and "best strategy" in named.stdout


def test_best_freeze_plot_writes_the_pictures_also_logged_to_the_study_run(smoke):
    work, _, client = smoke
    done = run_cli(["best-freeze", "--all", "--plot", "answer.png"], cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "answer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "top group" in done.stdout and "answer.png" in done.stdout
    experiment = client.get_experiment_by_name("smoke")
    (parent,) = client.search_runs([experiment.experiment_id], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    logged = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"answer.png", "accuracy_by_boundary.png", "accuracy_by_size.png"} <= logged
    bad = run_cli(["best-freeze", "--plot", "no/such/folder/a.png"], cwd=work)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_pretraining_is_recorded_once_and_reused(smoke):
    work, done, client = smoke
    assert "pretraining lenet5 on glyphs" in done.stdout
    experiment = client.get_experiment_by_name(t.PRETRAIN_EXPERIMENT)
    assert len(client.search_runs([experiment.experiment_id])) == 1
    again = run_cli(["pretrain", "--preset", "smoke"], cwd=work)
    assert again.returncode == 0 and "(cached" in again.stdout
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert list((work / "pretrained" / "glyphs").glob("lenet5-seed0-*.pt"))
