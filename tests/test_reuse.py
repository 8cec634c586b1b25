"""The confirm runs on the search's own subset, taken from the search (study.stages.reuse):
what a user reads is what training them again gives, bit for bit on one machine, with no
Ray trial for them and each one naming the search run it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import helpers

ROOT = Path(__file__).resolve().parent.parent


def smoke_config(reuse: bool) -> dict:
    """The smoke study on 2 seeds in one round: seed 0 is the search's subset, seed 1 not."""
    from study.config.files import load_preset

    config = load_preset("smoke").model_dump(mode="json", exclude_none=True)
    config["target"]["seeds"] = 2
    config["answer"] = {"looks": [], "reuse_search_runs": reuse}
    return config


def run_study(work: Path, config: dict) -> str:
    work.mkdir()
    (work / "study.yaml").write_text(json.dumps(config))
    ray_tmp = tempfile.mkdtemp(prefix="ru-", dir="/tmp")  # ours: removed at the end
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STUDY_"))}
    env |= {"STUDY_RAY_TMPDIR": ray_tmp, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "study", "run", "--config", "study.yaml"],
            cwd=work, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        subprocess.run(["rm", "-rf", ray_tmp], check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.ray
def test_seed_zero_is_taken_from_the_search_and_the_answer_is_what_training_again_gives(
    tmp_path,
):
    from mlflow.tracking import MlflowClient

    from study.tracking import client as t

    reused_out = run_study(tmp_path / "reused", smoke_config(reuse=True))
    trained_out = run_study(tmp_path / "trained", smoke_config(reuse=False))

    # The same answer, to the last digit: the per-seed accuracies, the race, the tables.
    reused, trained = (
        json.loads(helpers.best_freeze_json(tmp_path / side)) for side in ("reused", "trained")
    )
    assert reused == trained

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'reused' / 'mlflow.db'}")
    parent = client.search_runs(
        [client.get_experiment_by_name("smoke").experiment_id],
        f"tags.{t.TAG_RUN_TYPE} = 'study'",
    )[0]
    children = t.child_runs(client, parent.info.run_id)
    by_id = {run.info.run_id: run for run in children}
    confirm = [r for r in children if r.data.tags[t.TAG_PHASE] == "confirm"]
    copies = [r for r in confirm if t.TAG_REUSED_FROM in r.data.tags]
    labels = {r.data.tags[t.TAG_STRATEGY_LABEL] for r in confirm}
    assert len(confirm) == 2 * len(labels) and len(copies) == len(labels)
    for copy in copies:
        source = by_id[copy.data.tags[t.TAG_REUSED_FROM]]
        assert source.data.tags[t.TAG_PHASE] == "search"
        assert copy.data.tags[t.TAG_SEED] == source.data.tags[t.TAG_SEED] == "0"
        assert copy.data.params == source.data.params
        assert copy.data.metrics == source.data.metrics
        assert copy.info.status == "FINISHED" and t.TAG_TRIAL_ID not in copy.data.tags
        curve = client.get_metric_history(copy.info.run_id, t.METRIC_VAL_ACC)
        assert [m.step for m in curve] == [1, 2]  # the search trial's curve, in the UI too
    # Only seed 1 trained in the confirm phase: one Ray trial per label, not two.
    work = tmp_path / "reused"
    assert len(list((work / "ray_results").glob("*-confirm-r1/tune_trial_*"))) == len(labels)
    assert f"{2 * len(labels)} trials, {len(labels)} of them the search's own" in reused_out
    assert "the search's own" not in trained_out


def test_only_a_search_trial_that_ran_all_its_steps_is_a_confirm_trial_on_seed_zero():
    """A confirm configuration on seed 0 trains what its search trial trained, unless ASHA
    stopped that trial early (it trained less) or the trial was rebuilt from Optuna after a
    resume (no Ray trial, no run to copy); on other seeds nothing is the search's."""
    from types import SimpleNamespace

    from study.stages.confirm import confirm_configs
    from study.stages.reuse import search_twins, twin_of
    from study.tuning.searcher import RecoveredResult
    from trainables.contract import Key, Report

    def searched(trial: str, lr: float, completed: bool):
        config = {
            Key.PHASE: "search", Key.TARGET: "digits", Key.SIZE: 2, Key.SEED: 0,
            Key.ARCH: "lenet5", Key.STRATEGY: "finetune", Key.FREEZE: 0, Key.LR: lr,
            Key.OPTUNA_TRIAL: int(trial[-1]),
        }  # fmt: skip
        metrics = {Report.BEST_VAL_ACC: lr * 100, Report.COMPLETED: completed, "trial_id": trial}
        return SimpleNamespace(config=config, metrics=metrics, error=None)

    results = [searched("t1", 0.003, True), searched("t2", 0.004, False)]
    done = {Report.BEST_VAL_ACC: 0.5, Report.COMPLETED: True}  # and no Ray trial id
    results.append(RecoveredResult(searched("t3", 0.005, True).config, done))
    every = confirm_configs(results, seeds=2, candidates=lambda size: 3)
    twins = search_twins(results)
    found = {(c[Key.LR], c[Key.SEED]): twin_of(c, twins) for c in every}
    assert found == {(lr, seed): None for lr in (0.003, 0.004, 0.005) for seed in (0, 1)} | {
        (0.003, 0): "t1"
    }
