"""The stratified Optuna searcher on real RDB storage (SQLite): strata, budgets, states."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from search_spaces.transfer import coverage_points, define
from study.searcher import StratifiedOptunaSearch, Stratum, create_stratum_study

STAGES = {"lenet5": 4, "resnet18": 5}
STRATEGIES = ["scratch", "freeze-b", "linear-probe"]


def make(storage: str, budget: int) -> StratifiedOptunaSearch:
    startup = coverage_points(STAGES, STRATEGIES)
    strata = [
        Stratum(
            f"s.size-{size}",
            create_stratum_study(storage, f"s.size-{size}", size, startup),
            budget,
            {"size": size, "reports": 3},
        )
        for size in (1, 5)
    ]
    return StratifiedOptunaSearch(
        strata,
        lambda trial, constants: {**define(trial, STAGES, STRATEGIES), **constants},
        metric="val_acc",
    )


def test_strata_get_their_budget_and_every_strategy_first(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = make(storage, budget=6)
    configs = [searcher.suggest(f"t{i}") for i in range(12)]
    assert searcher.suggest("t12") == Searcher.FINISHED
    for size in (1, 5):
        mine = [c for c in configs if c["size"] == size]
        assert len(mine) == 6
        assert {(c["arch"], c["strategy"]) for c in mine} == {
            (a, s) for a in STAGES for s in STRATEGIES
        }
    for c in configs:
        if c["strategy"] == "linear-probe":
            assert c["freeze"] == STAGES[c["arch"]]
        elif c["strategy"] == "freeze-b":
            assert 1 <= c["freeze"] < STAGES[c["arch"]]
        else:
            assert c["freeze"] == 0
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {"s.size-1", "s.size-5"}


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
