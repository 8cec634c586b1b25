"""Several targets in one study (issue 14): the config, the strata, the similarity measure,
and a two-target study end to end on the real parts (Ray, Optuna RDB, MLflow on SQLite)."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from study.answer.report import PICTURES
from study.config.files import load_preset, parse_config
from study.errors import ConfigError
from study.stages.confirm import confirm_budget, confirm_configs, target_seeds, unconfirmed
from study.stages.context import search_labels
from study.stages.search import make_searcher, search_budget, stratum_prefix
from study.tracking import client as t
from study.tuning.searcher import RecoveredResult
from tests.conftest import run_cli
from trainables.contract import Key, Report
from trainables.datasets import load_target
from trainables.similarity import earth_movers_distance

SMALL = {"val_per_class": 20, "test_per_class": 30}
TWO = {
    "name": "two-targets",
    "targets": [
        {"dataset": "digits", "sizes": [2], "seeds": 2, **SMALL},
        {"dataset": "textures", "sizes": [1, 2], "seeds": 2, **SMALL},
    ],
    "source": {"dataset": "glyphs", "images": 2600, "epochs": 2, "seed": 0},
    "training": {"steps": [{"up_to": None, "steps": 10}], "reports": 2, "batch_size": 16},
    "search": {
        "architectures": ["lenet5"],
        "strategies": ["scratch", "finetune", "linear-probe"],
        "trials_per_label": 1,
    },
    "resources": {"cpu_per_trial": 1},
}

# TWO with 2 trials per label, whose best 2 are confirmed at 1 per class (textures), 1 above
CANDIDATES = {
    **TWO,
    "search": {
        **TWO["search"],
        "trials_per_label": 2,
        "confirm_candidates": [{"up_to": 1, "candidates": 2}, {"up_to": None, "candidates": 1}],
    },
}


# --- the config ----------------------------------------------------------------------------


def test_targets_is_a_list_and_target_stays_valid_for_one():
    two = parse_config(TWO, "test")
    assert [t.key for t in two.target_list()] == ["digits", "textures"]
    assert [(t.key, size) for t, size in two.target_sizes()] == [
        ("digits", 2),
        ("textures", 1),
        ("textures", 2),
    ]
    smoke = load_preset("smoke")
    assert not smoke.several_targets() and smoke.sizes() == [2]
    assert search_budget(two, search_labels(two)) == 3 * 3  # 3 labels x 3 strata, one trial each
    assert confirm_budget(two, search_labels(two)) == 3 * 3 * 2
    # Best 2 at 1 per class (textures only), 1 above: 3 labels x 2 seeds x (1 + 2 + 1)
    candidates = parse_config(CANDIDATES, "test")
    assert confirm_budget(candidates, search_labels(candidates)) == 3 * 2 * 4


@pytest.mark.parametrize(
    "change,message",
    [
        ({"target": {"dataset": "digits"}}, "either `target:`"),
        (
            {"targets": [{"dataset": "digits"}, {"dataset": "digits", "sizes": [1]}]},
            "distinct names",
        ),
        ({"targets": [{"dataset": "digits", "name": "a.b"}]}, "targets.0.name"),
        ({"targets": []}, "targets"),
        ({"targets": [{"dataset": "digits", "sise": [1]}]}, "allowed here: name, dataset"),
    ],
)
def test_bad_target_lists_are_one_line_errors(change, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_config({**TWO, **change}, "test")


def test_a_named_target_may_repeat_a_dataset():
    config = parse_config(
        {**TWO, "targets": [{"dataset": "digits"}, {"dataset": "digits", "name": "digits-b"}]}, "x"
    )
    assert [t.key for t in config.target_list()] == ["digits", "digits-b"]


def test_an_image_folder_is_named_after_the_folder_not_its_path():
    folders = [
        {"dataset": "imagefolder:/data/x/hymenoptera_data"},
        {"dataset": "imagefolder:~/photos/my pets/"},
    ]
    config = parse_config({**TWO, "targets": folders}, "test")
    assert [t.key for t in config.target_list()] == ["hymenoptera_data", "my-pets"]
    assert [stratum_prefix(config, "study", t.key) for t in config.target_list()] == [
        "study.hymenoptera_data",
        "study.my-pets",
    ]
    named = parse_config({**TWO, "targets": [folders[0], {**folders[1], "name": "pets"}]}, "x")
    assert [t.key for t in named.target_list()] == ["hymenoptera_data", "pets"]


def test_two_folders_of_one_name_are_refused_with_both_paths_in_one_line():
    same = [
        {"dataset": "imagefolder:/data/x/hymenoptera_data"},
        {"dataset": "imagefolder:/data/y/hymenoptera_data"},
    ]
    with pytest.raises(ConfigError) as refused:
        parse_config({**TWO, "targets": same}, "test")
    line = str(refused.value)
    assert "\n" not in line and "both named 'hymenoptera_data'" in line and "`name:`" in line
    assert "/data/x/hymenoptera_data and imagefolder:/data/y/hymenoptera_data" in line


# --- strata: one Optuna study per (target, size, architecture, label) ----------------------


@pytest.fixture(scope="module")
def loaded():
    return {name: load_target(name, **SMALL) for name in ("digits", "textures")}


def test_several_targets_make_several_strata_each_with_its_own_optuna_study(tmp_path, loaded):
    config = parse_config(TWO, "test").model_copy()
    stores = config.stores.model_copy(update={"optuna": f"sqlite:///{tmp_path / 'o.db'}"})
    config = config.model_copy(update={"stores": stores})
    searcher = make_searcher(config, loaded, "key", search_labels(config))
    names = [stratum.key for stratum in searcher.strata]
    labels = len(search_labels(config))
    assert len(names) == len(set(names)) == 3 * labels
    assert sum(name.startswith("key.digits.size-2.") for name in names) == labels
    assert sum(name.startswith("key.textures.size-1.") for name in names) == labels
    stored = {s.study_name for s in optuna.get_all_study_summaries(config.stores.optuna)}
    assert stored == set(names)
    for stratum in searcher.strata:  # every trial of a stratum trains on its own target
        target = stratum.key.split(".")[1]
        assert stratum.constants[Key.TARGET] == target
        assert stratum.constants[Key.DATASET] == loaded[target].name


def test_a_single_target_study_keeps_its_optuna_names(tmp_path, loaded):
    smoke = load_preset("smoke")
    stores = smoke.stores.model_copy(update={"optuna": f"sqlite:///{tmp_path / 'o.db'}"})
    smoke = smoke.model_copy(update={"stores": stores})
    searcher = make_searcher(smoke, loaded, "key", search_labels(smoke))
    assert all(s.key.startswith("key.size-2.lenet5.") for s in searcher.strata)


def test_confirm_picks_the_best_per_target_and_runs_each_targets_seeds():
    def result(target, lr, acc):
        config = {
            Key.TARGET: target,
            Key.SIZE: 2,
            Key.ARCH: "lenet5",
            Key.STRATEGY: "finetune",
            Key.FREEZE: 0,
            Key.LR: lr,
        }
        return RecoveredResult(config, {Report.BEST_VAL_ACC: acc, Report.COMPLETED: True})

    results = [result("a", 0.1, 0.5), result("a", 0.2, 0.6), result("b", 0.1, 0.9)]
    chosen = confirm_configs(results, {"a": 2, "b": 3})
    assert [(c[Key.TARGET], c[Key.LR], c[Key.SEED]) for c in chosen] == [
        ("a", 0.2, 0),
        ("a", 0.2, 1),
        ("b", 0.1, 0),
        ("b", 0.1, 1),
        ("b", 0.1, 2),
    ]
    assert target_seeds(parse_config(TWO, "x")) == {"digits": 2, "textures": 2}


def test_confirm_retrains_each_labels_best_candidates_where_the_size_asks():
    def result(size, trial, acc, completed=True):
        config = {
            Key.SIZE: size,
            Key.ARCH: "lenet5",
            Key.STRATEGY: "finetune",
            Key.FREEZE: 0,
            Key.LR: trial / 10,
            Key.OPTUNA_TRIAL: trial,
        }
        return RecoveredResult(config, {Report.BEST_VAL_ACC: acc, Report.COMPLETED: completed})

    results = [result(1, t, acc) for t, acc in enumerate([0.5, 0.7, 0.6, 0.7])]
    results += [result(1, 4, 0.9, completed=False)]  # stopped early: ranks below the rest
    results += [result("all", t, acc) for t, acc in enumerate([0.8, 0.9])]
    chosen = confirm_configs(results, 2, parse_config(CANDIDATES, "x").search.candidates_for)
    # Size 1: the two best completed trials (the earlier of the tied 0.7 first), each on
    # both seeds, numbered 1 and 2; size all: its best only.
    assert [
        (c[Key.SIZE], round(c[Key.LR] * 10), c[Key.CANDIDATE], c[Key.SEED]) for c in chosen
    ] == [
        (1, 1, 1, 0),
        (1, 1, 1, 1),
        (1, 3, 2, 0),
        (1, 3, 2, 1),
        ("all", 1, 1, 0),
        ("all", 1, 1, 1),
    ]
    assert all(c[Key.PHASE] == "confirm" and Key.OPTUNA_TRIAL not in c for c in chosen)


def test_the_textures_are_ten_classes_drawn_the_same_for_a_seed():
    from trainables.datasets.textures import CLASSES, render_textures

    images, labels = render_textures(3, seed=5)
    again, labels_again = render_textures(3, seed=5)
    other, _ = render_textures(3, seed=6)
    assert images.dtype == np.uint8 and images.shape == (3 * len(CLASSES), 32, 32)
    assert len(CLASSES) == 10 and np.bincount(labels).tolist() == [3] * 10
    assert np.array_equal(images, again) and np.array_equal(labels, labels_again)
    assert not np.array_equal(images, other)
    target = load_target("textures", **SMALL)
    assert target.num_classes == 10 and target.max_size() == 150 - 20 - 30


# --- the similarity measure ----------------------------------------------------------------


def test_emd_is_the_cheapest_transport():
    a = np.array([[0.0], [1.0]])
    b = np.array([[0.0], [3.0]])
    # Half the mass stays at 0, half moves from 1 to 3.
    assert earth_movers_distance(a, np.array([0.5, 0.5]), b, np.array([0.5, 0.5])) == (
        pytest.approx(1.0)
    )
    # Unequal weights: 0.2 of the mass at 0 must travel to 3 as well.
    w = earth_movers_distance(a, np.array([0.7, 0.3]), b, np.array([0.5, 0.5]))
    assert w == pytest.approx(0.3 * 2 + 0.2 * 3)


@pytest.mark.slow
def test_a_target_of_the_sources_own_classes_is_more_similar_than_the_distant_one(one_thread):
    """In a network pretrained on glyphs (briefly: the ordering needs no good network),
    other renders of the same letters sit nearer the source than digits, and digits
    nearer than the procedural textures."""
    from trainables.pretrain import PretrainSettings, train_source
    from trainables.registry import get_arch
    from trainables.similarity import measure, source_sample

    settings = PretrainSettings("glyphs", 2600, 2, 128, 0.05, 5e-4, 0)
    state = train_source("lenet5", settings, log=lambda line: None)["state_dict"]
    sample = source_sample(per_class=20)
    values = {
        name: measure(get_arch("lenet5"), state, load_target(name, **SMALL), sample)
        for name in ("glyphs", "digits", "textures")
    }
    assert values["glyphs"].similarity > values["digits"].similarity
    assert values["digits"].similarity > values["textures"].similarity
    assert all(0 < v.similarity <= 1 for v in values.values())


# --- a two-target study end to end ----------------------------------------------------------


@pytest.mark.ray
@pytest.mark.slow
def test_a_two_target_study_answers_per_target_and_size_and_tags_every_run(tmp_path):
    """TWO with 2 trials per label, the best 2 of each label confirmed at 1 per class."""
    (tmp_path / "two.yaml").write_text(json.dumps(CANDIDATES))
    done = run_cli(["run", "--config", "two.yaml"], cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("two-targets")
    (parent,) = client.search_runs([experiment.experiment_id], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    children = client.search_runs(
        [experiment.experiment_id], f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent.info.run_id}'"
    )
    config = parse_config(CANDIDATES, "x")
    labels = search_labels(config)
    assert len(children) == search_budget(config, labels) + confirm_budget(config, labels)
    assert {r.data.tags[t.TAG_TARGET] for r in children} == {"digits", "textures"}
    assert all(r.data.tags.get(t.TAG_TARGET) for r in children)
    assert all(r.data.params[Key.TARGET] == r.data.tags[t.TAG_TARGET] for r in children)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert len(names) == len(search_labels(config)) * len(config.target_sizes())  # a study each
    metrics = parent.data.metrics
    similarity = {name: metrics[t.similarity_metric(name, "lenet5")] for name in TWO_NAMES}
    assert all(0 < value <= 1 for value in similarity.values())
    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert set(PICTURES) <= artifacts and "freeze_fraction_by_size.png" in artifacts

    shown = run_cli(["best-freeze", "--format", "json"], cwd=tmp_path)
    answer = json.loads(shown.stdout)
    assert [(a["target"], a["size"]) for a in answer] == [
        ("digits", "2"),
        ("textures", "1"),
        ("textures", "2"),
    ]
    confirm = [r for r in children if r.data.tags[t.TAG_PHASE] == "confirm"]
    for item in answer:
        for entry in item["ranking"]:  # each label: its candidate best on validation
            runs = {
                (int(r.data.tags[t.TAG_CANDIDATE]), r.data.tags[t.TAG_SEED]): r.data.metrics
                for r in confirm
                if r.data.tags[t.TAG_TARGET] == item["target"]
                and r.data.tags[t.TAG_SIZE] == item["size"]
                and r.data.tags[t.TAG_STRATEGY_LABEL] == entry["strategy"]
            }
            numbers = {number for number, _ in runs}
            assert numbers == ({1, 2} if item["size"] == "1" else {1})
            val = {
                n: sum(m[t.METRIC_BEST_VAL_ACC] for (c, _), m in runs.items() if c == n)
                for n in numbers
            }
            assert val[entry["candidate"]] == max(val.values())
            assert entry["per_seed"] == {
                seed: m[t.METRIC_TEST_ACC]
                for (c, seed), m in runs.items()
                if c == entry["candidate"]
            }
        assert item["similarity"] == {"lenet5": pytest.approx(similarity[item["target"]])}
        assert len(item["best"]["per_seed"]) == 2
        fraction = item["best_freeze_fraction"]
        assert fraction["low"] <= fraction["freeze_frac"] <= fraction["high"]
    table = run_cli(["best-freeze"], cwd=tmp_path).stdout
    assert "similarity to source" in table
    assert f"{similarity['textures']:.3f}" in table and f"{similarity['digits']:.3f}" in table


TWO_NAMES = ("digits", "textures")


def test_a_lost_confirm_trial_is_found_by_its_candidate_too(tmp_path):
    """Resume reruns exactly the confirm configurations without a finished run: candidate 2
    of a label whose candidate 1 finished is still missing; a run from a store of before
    candidates (no tag) counts as candidate 1."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("lost")
    parent = client.create_run(experiment).info.run_id

    def config(seed, candidate):
        return {
            Key.TARGET: "digits",
            Key.SIZE: 1,
            Key.SEED: seed,
            Key.ARCH: "lenet5",
            Key.STRATEGY: "finetune",
            Key.FREEZE: 0,
            Key.CANDIDATE: candidate,
        }

    def finished_run(seed, candidate=None):
        tags = {
            MLFLOW_PARENT_RUN_ID: parent,
            t.TAG_PHASE: "confirm",
            t.TAG_TARGET: "digits",
            t.TAG_SIZE: "1",
            t.TAG_SEED: str(seed),
            t.TAG_ARCH: "lenet5",
            t.TAG_STRATEGY_LABEL: "finetune",
        }
        if candidate is not None:
            tags[t.TAG_CANDIDATE] = str(candidate)
        run = client.create_run(experiment, tags=tags)
        client.set_terminated(run.info.run_id, "FINISHED")

    finished_run(0, candidate=1)
    finished_run(1)  # no candidate tag: an earlier study's run, candidate 1
    finished_run(0, candidate=2)
    configs = [config(seed, candidate) for candidate in (1, 2) for seed in (0, 1)]
    assert unconfirmed(client, parent, configs) == [config(1, 2)]
