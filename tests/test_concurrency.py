"""Many trials at once, and trials that fail, through the service's own searcher and MLflow
callback on real Ray (16 logical CPUs), real MLflow and real Optuna storage; the trainables
are tiny stand-ins (tests/tiny_trainables.py).

16 trials that finish at the same moment: 16 child runs, 16 told Optuna trials and no
database error, on SQLite and on PostgreSQL. A trial that dies is restarted from its last
checkpoint (`fault_tolerance.max_failures`); one that keeps failing (a NaN loss) ends as a
FAILED run with the reason as a tag and a FAIL in Optuna, and the others go on."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.trial import TrialState
from ray import tune

from search_spaces.strategies import strategy_label
from search_spaces.transfer import Label, Ranges
from study.config.files import load_preset
from study.stages.search import StratumStudy, label_stratum, suggest_label
from study.stores.urls import sqlalchemy_url
from study.tracking import client as tracking
from study.tracking.trial_logger import MlflowTrialLogger
from study.tuning.progress import PhaseProgress
from study.tuning.runtime import local_ray
from study.tuning.searcher import StratifiedOptunaSearch
from study.tuning.tuner import run_config
from tests.tiny_trainables import TRIALS, at_the_same_moment, breaks

pytestmark = pytest.mark.ray
STAGES = {"lenet5": 4}
LABEL = Label("lenet5", "finetune", 0)  # the stand-in trainables ignore what they train
RANGES = Ranges()


@pytest.fixture(scope="module")
def ray_16():
    with local_ray(num_cpus=TRIALS, prefix="rc-"):
        yield


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().lower()
        if record.levelno >= logging.ERROR or "locked" in text or "operationalerror" in text:
            self.records.append(record)


def run_sixteen(mlflow_uri: str, optuna_uri: str, work: Path):
    config = load_preset("smoke")
    config = config.model_copy(
        update={"stores": config.stores.model_copy(update={"ray_results": str(work / "ray")})}
    )
    client = tracking.client_for(mlflow_uri)
    experiment_id = tracking.ensure_experiment(client, "concurrency", str(work / "artifacts"))
    parent = tracking.start_study_run(client, experiment_id, "concurrency", {})
    logger = MlflowTrialLogger(client, experiment_id, parent, STAGES, strategy_label)
    constants = {
        "phase": "search",
        "dataset": "digits",
        "size": 2,
        "seed": 0,
        "steps": 1,
        "reports": 1,
        "batch_size": 8,
    }
    study = StratumStudy(optuna_uri, "concurrency.size-2", 0, TRIALS)
    stratum = label_stratum(study, LABEL, RANGES, constants)
    searcher = StratifiedOptunaSearch(
        [stratum],
        lambda trial, c: {**suggest_label(trial, c, RANGES), **c, "weights": "none"},
        metric="val_acc",
    )
    barrier = work / "barrier"
    barrier.mkdir()
    trainable = tune.with_resources(
        tune.with_parameters(at_the_same_moment, barrier=str(barrier)), {"cpu": 1}
    )
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        results = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric="val_acc",
                mode="max",
                search_alg=searcher,
                num_samples=TRIALS,
                max_concurrent_trials=TRIALS,
            ),
            run_config=run_config(config, "sixteen", [logger]),
        ).fit()
    finally:
        logging.getLogger().removeHandler(errors)
    return client, experiment_id, parent, results, errors.records


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sixteen_trials_finishing_together_make_sixteen_runs(store, ray_16, tmp_path, request):
    if store == "sqlite":
        mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        optuna_uri = f"sqlite:///{tmp_path / 'optuna.db'}"
    else:
        server = request.getfixturevalue("postgres")
        mlflow_uri = server.create_database("mlflow")
        optuna_uri = server.create_database("optuna")

    client, experiment_id, parent, results, errors = run_sixteen(mlflow_uri, optuna_uri, tmp_path)

    assert not results.errors
    assert len(list((tmp_path / "barrier").iterdir())) == TRIALS  # all were running at once
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent}'"
    )
    assert len(runs) == TRIALS
    assert len({run.data.tags[tracking.TAG_TRIAL_ID] for run in runs}) == TRIALS
    assert all(run.info.status == "FINISHED" for run in runs)
    assert all(tracking.METRIC_TEST_ACC in run.data.metrics for run in runs)
    study = optuna.load_study(study_name="concurrency.size-2", storage=sqlalchemy_url(optuna_uri))
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * TRIALS
    assert errors == [], [record.getMessage() for record in errors]


def test_failed_trials_restart_from_a_checkpoint_or_end_failed_and_the_rest_go_on(
    ray_16, tmp_path, capsys
):
    config = load_preset("smoke")
    config = config.model_copy(
        update={"stores": config.stores.model_copy(update={"ray_results": str(tmp_path / "ray")})}
    )
    assert config.fault_tolerance.max_failures == 1
    client = tracking.client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = tracking.ensure_experiment(client, "faults", str(tmp_path / "artifacts"))
    parent = tracking.start_study_run(client, experiment_id, "faults", {})
    logger = MlflowTrialLogger(client, experiment_id, parent, STAGES, strategy_label)
    modes = ["fine", "flaky", "nan"]
    constants = {"phase": "search", "dataset": "digits", "size": 2, "seed": 0}
    constants |= {"steps": 1, "reports": 3, "batch_size": 8}
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = StratumStudy(storage, "faults.size-2", 0, len(modes))
    stratum = label_stratum(study, LABEL, RANGES, constants)
    searcher = StratifiedOptunaSearch(
        [stratum],
        lambda trial, c: {
            **suggest_label(trial, c, RANGES),
            **c,
            "weights": "none",
            "mode": modes[trial.number],
        },
        metric="val_acc",
    )
    (tmp_path / "markers").mkdir()
    trainable = tune.with_resources(
        tune.with_parameters(breaks, markers=str(tmp_path / "markers")), {"cpu": 1}
    )
    results = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric="val_acc", mode="max", search_alg=searcher, num_samples=len(modes)
        ),
        run_config=run_config(config, "faults", [logger, PhaseProgress("search", 3, True)]),
    ).fit()

    assert len(results.errors) == 1
    runs = client.search_runs([experiment_id], f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent}'")
    assert len(runs) == len(modes)  # a restarted trial keeps its run
    run_of = {run.data.tags[tracking.TAG_TRIAL_ID]: run for run in runs}
    by_mode = {r.config["mode"]: run_of[r.metrics["trial_id"]] for r in results}
    flaky, nan, fine = by_mode["flaky"], by_mode["nan"], by_mode["fine"]
    assert fine.info.status == "FINISHED" and tracking.TAG_RESTARTS not in fine.data.tags
    assert flaky.info.status == "FINISHED" and flaky.data.tags[tracking.TAG_RESTARTS] == "1"
    assert "the worker went away" in flaky.data.tags[tracking.TAG_ERROR]
    history = client.get_metric_history(flaky.info.run_id, tracking.METRIC_VAL_ACC)
    assert sorted(m.step for m in history) == [1, 2, 3]  # epoch 1 was not trained again
    assert nan.info.status == "FAILED"
    assert nan.data.tags[tracking.TAG_TRIAL_STATE] == "failed"
    assert "FloatingPointError: training loss became nan" in nan.data.tags[tracking.TAG_ERROR]
    states = [
        trial.state
        for trial in optuna.load_study(study_name="faults.size-2", storage=storage).trials
    ]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]  # fine, flaky, nan
    flaky_result = next(r for r in results if r.config["mode"] == "flaky")
    assert flaky_result.metrics["started_at"] == 2  # resumed from epoch 1's checkpoint
    kept = {r.config["mode"]: len(list(Path(r.path).glob("checkpoint_*"))) for r in results}
    assert kept == {"fine": 0, "flaky": 0, "nan": 1}  # finished trials' checkpoints dropped
    # The terminal: each failure with its reason as it happens; with verbose, a line per
    # finished trial; the phase's closing line counts the failed one.
    said = capsys.readouterr().out.splitlines()
    nan_id = nan.data.tags[tracking.TAG_TRIAL_ID]
    assert any(
        f"[search] trial {nan_id} failed (size 2 " in line and "training loss became nan" in line
        for line in said
    ), said
    assert any("restarting from its last checkpoint" in line for line in said), said
    assert len([line for line in said if " finished: size 2 " in line]) == 2
    assert "[search] 3/3 trials done, 1 failed in " in "\n".join(said)
