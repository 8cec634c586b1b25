"""One Optuna study per stratum (target dataset size), behind one Ray Tune searcher.

Ray Tune runs a single experiment with a single searcher; the question is asked
separately for every size, so this searcher holds one Optuna study per size and hands
out suggestions round-robin until each stratum has used its budget. It talks to Optuna
through ask/tell on RDB storage, which gives pruned-trial semantics: a trial that ASHA
stopped early is told as PRUNED (with its intermediate values), not as COMPLETE with a
truncated score, so it does not bias TPE.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

optuna.logging.set_verbosity(optuna.logging.WARNING)

OBJECTIVE = "best_val_acc"
OBJECTIVE_DONE = "test_acc"  # present in a trial's last report only when it ran to the end


class Stratum:
    """One Optuna study and how a suggestion from it becomes a Tune config."""

    def __init__(self, key: str, study: optuna.Study, budget: int, constants: dict) -> None:
        self.key = key
        self.study = study
        self.budget = budget
        self.constants = constants
        self.suggested = 0


def create_stratum_study(storage: str, name: str, seed: int, startup: list[dict]) -> optuna.Study:
    sampler = optuna.samplers.TPESampler(
        seed=seed, multivariate=True, n_startup_trials=max(len(startup), 4)
    )
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        direction="maximize",
        load_if_exists=True,
    )
    for params in startup:
        study.enqueue_trial(params, skip_if_exists=True)
    return study


class StratifiedOptunaSearch(Searcher):
    def __init__(
        self,
        strata: list[Stratum],
        define: Callable[[optuna.Trial, dict], dict],
        metric: str,
        mode: str = "max",
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.strata = strata
        self.define = define
        self.live: dict[str, tuple[Stratum, optuna.Trial]] = {}

    def suggest(self, trial_id: str):
        open_strata = [s for s in self.strata if s.suggested < s.budget]
        if not open_strata:
            return Searcher.FINISHED
        stratum = min(open_strata, key=lambda s: s.suggested)
        trial = stratum.study.ask()
        stratum.suggested += 1
        self.live[trial_id] = (stratum, trial)
        return {**self.define(trial, stratum.constants), "optuna_trial": trial.number}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        stratum, trial = self.live[trial_id]
        trial.report(result[self.metric], step=int(result["epoch"]))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        stratum, trial = self.live.pop(trial_id)
        if error or not result:
            stratum.study.tell(trial, state=TrialState.FAIL)
        elif OBJECTIVE_DONE in result:
            # Only a trial that ran all its epochs reports test_acc; judge it by its best
            # validation accuracy (the weights it would keep), never by test accuracy.
            stratum.study.tell(trial, result[OBJECTIVE])
        else:
            stratum.study.tell(trial, state=TrialState.PRUNED)


class FixedConfigs(Searcher):
    """Hands out a given list of configurations, in order, once each (the confirm phase)."""

    def __init__(self, configs: list[dict], metric: str, mode: str = "max") -> None:
        super().__init__(metric=metric, mode=mode)
        self.pending = list(configs)

    def suggest(self, trial_id: str):
        return self.pending.pop(0) if self.pending else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        pass
