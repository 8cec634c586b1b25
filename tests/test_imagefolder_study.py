"""A study on the user's own images: an ImageFolder of generated PNG/JPEG files of mixed
sizes and modes, every strategy, end to end through the CLI; and bad data stopping it.

Kept small (LeNet-5, one size, one seed, a few steps): it is the path, not the numbers,
that is under test.
"""

from __future__ import annotations

import json

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NOTE

from search_spaces.strategies import classical_strategies, list_strategies
from study.tracking import client as t
from tests.conftest import run_cli
from tests.test_datasets import make_folder, truncate
from trainables.contract import Key

pytestmark = pytest.mark.ray
FOLDER = "pets_photos"  # the target's name: the folder's own, not its path
STRATEGIES, CLASSICAL_STRATEGIES = list_strategies(), classical_strategies()
LABELS = len(STRATEGIES) + 2  # lenet5: freeze-b is freeze-1, freeze-2 and freeze-3


def study_config(folder, **target) -> dict:
    return {
        "name": "pets",
        "target": {
            "dataset": f"imagefolder:{folder}",
            "sizes": [2],
            "seeds": 1,
            "val_per_class": 2,
            "test_per_class": 2,
            **target,
        },
        "source": {"images": 520, "epochs": 1},
        "training": {"steps": [{"up_to": None, "steps": 6}], "reports": 2, "batch_size": 8},
        "search": {
            "architectures": ["lenet5"],
            "strategies": list(STRATEGIES),
            "trials_per_label": 1,
        },
        "resources": {"cpu_per_trial": 1},
    }


def labels_of(strategies) -> set[str]:
    return {s.split("-")[0] if s.startswith("freeze-") else s for s in strategies}


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    folder = make_folder(work / "images" / FOLDER, per_class=8)
    (work / "study.yaml").write_text(yaml.safe_dump(study_config(folder)))
    done = run_cli(["run", "--config", "study.yaml"], cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work, MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")


def test_every_strategy_is_confirmed_and_ranked_by_best_freeze(pets):
    work, _ = pets
    done = run_cli(["best-freeze", "--format", "json"], cwd=work)
    assert done.returncode == 0, done.stderr
    (answer,) = json.loads(done.stdout)
    assert answer["dataset"].startswith("imagefolder:") and answer["size"] == "2"
    ranked = [entry["strategy"] for entry in answer["ranking"]]
    assert labels_of(ranked) == labels_of(STRATEGIES) and len(ranked) == LABELS  # b = 1, 2, 3
    table = run_cli(["best-freeze", "--all"], cwd=work)
    assert table.returncode == 0 and "Every strategy confirmed" in table.stdout
    for strategy in ("lp-ft", "logreg", "svm", "knn", "linear-probe", "scratch"):
        assert f"lenet5 {strategy}" in table.stdout, strategy


def test_no_path_of_the_machine_names_the_target(pets):
    """The target is `pets_photos` in the run names, the tags and params that name it, the
    Optuna studies and the printed table: never the path of the folder it is in."""
    work, client = pets
    parent = str(work / "images")
    experiment = client.get_experiment_by_name("pets")
    runs = client.search_runs([experiment.experiment_id])
    trials = [run for run in runs if t.TAG_TARGET in run.data.tags]
    assert trials and {run.data.tags[t.TAG_TARGET] for run in trials} == {FOLDER}
    assert {run.data.params[Key.TARGET] for run in trials} == {FOLDER}
    for run in runs:
        naming = {"run name": run.info.run_name, "target tag": run.data.tags.get(t.TAG_TARGET)}
        naming |= {  # but `config`, the study's config as written (a rerun needs the path)
            f"param {name}": value for name, value in run.data.params.items() if name != "config"
        }
        assert not {what: v for what, v in naming.items() if v and parent in v}, run.info.run_name
    optuna_db = f"sqlite:///{work / 'optuna.db'}"
    studies = [summary.study_name for summary in optuna.get_all_study_summaries(optuna_db)]
    assert studies and not [name for name in studies if parent in name or ":" in name]
    table = run_cli(["best-freeze"], cwd=work)
    assert table.returncode == 0 and FOLDER in table.stdout and parent not in table.stdout


def test_the_ui_shows_the_folder_by_its_name_never_its_path(pets):
    """What the MLflow UI shows of the target's dataset (each trial's `dataset` tag and
    dataset input, the answer's JSON, the experiment's and the study run's descriptions)
    is `imagefolder:pets_photos`, never the folder's path (only the `config` param and the
    config.yaml artifact, the study as written, keep it: a rerun reads the folder)."""
    work, client = pets
    shown, where = f"imagefolder:{FOLDER}", str(work / "images")
    experiment = client.get_experiment_by_name("pets")
    runs = client.search_runs([experiment.experiment_id])
    trials = [client.get_run(run.info.run_id) for run in runs if t.TAG_TARGET in run.data.tags]
    assert trials and {run.data.tags[t.TAG_DATASET] for run in trials} == {shown}
    for run in trials:
        (given,) = run.inputs.dataset_inputs
        dataset, tags = given.dataset, run.data.tags
        assert dataset.name == f"{shown}-size{tags[t.TAG_SIZE]}-seed{tags[t.TAG_SEED]}"
        assert json.loads(dataset.source)["dataset"] == shown
        assert where not in dataset.name + dataset.source + dataset.profile
    done = run_cli(["best-freeze", "--format", "json"], cwd=work)
    (answer,) = json.loads(done.stdout)
    assert answer["dataset"] == shown and {e["dataset"] for e in answer["ranking"]} == {shown}
    assert where not in done.stdout
    description = experiment.tags[MLFLOW_RUN_NOTE]
    assert f"**{shown}**" in description and where not in description
    for run in runs:
        assert where not in run.data.tags.get(MLFLOW_RUN_NOTE, ""), run.info.run_name


def test_trials_log_their_own_hyperparameters_and_the_feature_cache(pets):
    work, client = pets
    experiment = client.get_experiment_by_name("pets")
    (parent,) = client.search_runs([experiment.experiment_id], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent.info.run_id}'",
    )
    assert len(runs) == 2 * LABELS  # one search and one confirm trial each
    by_strategy = {}
    for run in runs:
        by_strategy.setdefault(run.data.tags[t.TAG_STRATEGY], []).append(run)
        assert t.TAG_FEATURE_CACHE in run.data.tags, run.data.tags
        assert run.info.status == "FINISHED"
    assert set(by_strategy) == set(STRATEGIES)
    for run in by_strategy["logreg"] + by_strategy["svm"]:
        assert "C" in run.data.params and "knn_k" not in run.data.params
    for run in by_strategy["knn"]:
        assert {"knn_k", "knn_metric"} <= set(run.data.params)
    for run in by_strategy["lp-ft"]:
        assert {"lr", "backbone_lr_mult"} <= set(run.data.params)
        assert run.data.tags[t.TAG_FEATURE_CACHE].startswith("probe: on")
    for strategy in ("linear-probe", *CLASSICAL_STRATEGIES):
        assert all(r.data.tags[t.TAG_FEATURE_CACHE] == "on" for r in by_strategy[strategy])
        assert all(r.data.tags[t.TAG_FREEZE_FRAC] == "1.000" for r in by_strategy[strategy])
    assert all(
        r.data.tags[t.TAG_FEATURE_CACHE] == "off: nothing frozen" for r in by_strategy["scratch"]
    )
    assert list((work / "feature_cache").rglob("*.pt")), "no features were cached on disk"


def test_a_corrupt_image_stops_the_study_before_it_starts(tmp_path):
    folder = make_folder(tmp_path / "pets", per_class=8)
    bad = folder / "dog" / "005.jpg"
    truncate(bad)
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study_config(folder)))
    done = run_cli(["run", "--config", "study.yaml"], cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot read image {bad}" in lines[0], done.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


def test_a_size_beyond_the_smallest_class_names_it(tmp_path):
    folder = make_folder(tmp_path / "pets", per_class=8)
    for file in sorted((folder / "owl").iterdir())[6:]:
        file.unlink()  # owl: 6 images, 2 of them left for training
    config = study_config(folder, sizes=[3])
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    done = run_cli(["run", "--config", "study.yaml"], cwd=tmp_path)
    assert done.returncode == 2
    assert "3 examples per class" in done.stderr and "class 'owl'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
