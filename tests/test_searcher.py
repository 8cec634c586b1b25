"""The stratified Optuna searcher on real RDB storage (SQLite): strata, budgets, states."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher

from search_spaces.transfer import Ranges, labels
from study.stages.search import StratumStudy, label_stratum, suggest_label
from study.tuning.searcher import OBJECTIVE, StratifiedOptunaSearch

STAGES = {"lenet5": 4, "resnet18": 5}
STRATEGIES = ["scratch", "freeze-b", "logreg"]
LABELS = labels(STAGES, STRATEGIES)  # lenet5: 5 labels (freeze-1..3), resnet18: 6
RANGES = Ranges()


def make(storage: str, budget: int, sizes=(1, 5)) -> StratifiedOptunaSearch:
    """The study's searcher (study.stages.search.make_searcher) without a config: one
    stratum per (size, label)."""
    strata = [
        label_stratum(
            StratumStudy(
                storage, f"s.size-{size}.{label.arch}.{label.name}", 10 * size + number, budget
            ),
            label,
            RANGES,
            {"size": size, "reports": 3},
        )
        for size in sizes
        for number, label in enumerate(LABELS)
    ]
    return StratifiedOptunaSearch(
        strata, lambda trial, c: {**suggest_label(trial, c, RANGES), **c}, metric="val_acc"
    )


def test_every_label_gets_its_budget_its_boundary_and_its_range_spread_first(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = make(storage, budget=3)
    configs = [searcher.suggest(f"t{i}") for i in range(3 * 2 * len(LABELS))]
    assert searcher.suggest("one-more") == Searcher.FINISHED
    grid_lr = [1e-3 * 300 ** ((i + 0.5) / 3) for i in range(3)]  # Ranges().lr: 1e-3..0.3
    grid_c = [1e-3 * 1e4 ** ((i + 0.5) / 3) for i in range(3)]  # Ranges().C: 1e-3..10
    for size in (1, 5):
        for label in LABELS:
            mine = [
                c
                for c in configs
                if c["size"] == size
                and (c["arch"], c["strategy"], c["freeze"])
                == (label.arch, label.strategy, label.freeze)
            ]
            assert len(mine) == 3, (size, label)
            tried = sorted(c["C"] if label.strategy == "logreg" else c["lr"] for c in mine)
            expected = grid_c if label.strategy == "logreg" else grid_lr
            assert tried == pytest.approx(expected), (size, label)
    boundaries = {(c["arch"], c["freeze"]) for c in configs if c["strategy"] == "freeze-b"}
    assert boundaries == {("lenet5", b) for b in (1, 2, 3)} | {
        ("resnet18", b) for b in (1, 2, 3, 4)
    }
    assert {
        c["freeze"] for c in configs if c["strategy"] == "logreg" and c["arch"] == "lenet5"
    } == {4}
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert len(names) == 2 * len(LABELS) and "s.size-5.resnet18.freeze-4" in names
    stored = optuna.load_study(study_name="s.size-5.resnet18.freeze-4", storage=storage)
    assert stored.metric_names == [OBJECTIVE] == ["best_val_acc"]  # not "Objective 0"


def test_stopped_early_is_pruned_finished_is_complete_error_is_fail(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = make(storage, budget=3)
    for trial_id in ("done", "stopped", "broken"):
        searcher.suggest(trial_id)
    searcher.on_trial_result("done", {"val_acc": 0.5, "epoch": 1})
    searcher.on_trial_complete(
        "done",
        {"val_acc": 0.7, "best_val_acc": 0.8, "epoch": 3, "test_acc": 0.1, "completed": True},
    )
    searcher.on_trial_result("stopped", {"val_acc": 0.2, "epoch": 1})
    searcher.on_trial_complete("stopped", {"val_acc": 0.2, "best_val_acc": 0.2, "epoch": 1})
    searcher.on_trial_complete("broken", None, error=True)

    trials = {}
    for summary in optuna.get_all_study_summaries(storage):
        for trial in optuna.load_study(study_name=summary.study_name, storage=storage).trials:
            if trial.state != TrialState.WAITING:
                trials[trial.state] = trial
    assert trials[TrialState.COMPLETE].value == 0.8  # best validation, never test accuracy
    assert trials[TrialState.PRUNED].intermediate_values == {1: 0.2}
    assert TrialState.FAIL in trials
