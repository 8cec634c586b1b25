"""One Optuna study per stratum, behind one Ray Tune searcher.

A stratum is one (target, size, architecture, strategy label) and its Optuna study. Ray
Tune runs a single experiment with a single searcher; the question is asked separately
for every stratum, so this searcher holds one Optuna study per stratum and hands out
suggestions round-robin until each stratum has used its budget. It talks to Optuna
through ask/tell on RDB storage, which gives pruned-trial semantics: a trial that ASHA
stopped early is told as PRUNED (with its intermediate values), not as COMPLETE with a
truncated score, so it does not bias TPE.

Resume: Optuna's RDB storage is the source of truth. Ray saves this searcher's small
state (which Ray trial holds which Optuna trial) next to its experiment state, and on
`Tuner.restore` hands it back; the searcher then re-attaches the Optuna trials of the
Ray trials that will continue, closes every other trial left RUNNING by the killed
driver as FAIL (tagged `interrupted`, not counted against the budget), and recounts each
stratum's budget from the storage. Pickled (Ray's tuner.pkl), a stratum keeps its
storage URL with the password masked; see study.stores.urls.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import TrialState
from ray.tune.search import Searcher

from study.stores.urls import mask_urls, reveal_urls, sqlalchemy_url
from trainables.contract import Key, Report, is_completed

optuna.logging.set_verbosity(optuna.logging.WARNING)

OBJECTIVE = Report.BEST_VAL_ACC  # what a trial that ran to the end is told with


class Stratum:
    """One (target, size, architecture, strategy label): its Optuna study, its budget, and
    the constants that make a suggestion from it a Tune config."""

    def __init__(self, key: str, study: optuna.Study, budget: int, constants: dict) -> None:
        self.key = key
        self.study = study
        self.budget = budget
        self.constants = constants
        self.suggested = 0

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        url = _storage_url(self.study)
        if url is not None:  # reconnect on unpickling, without the password on disk
            state["study"] = (url, self.study.study_name, self.study.sampler)
        return mask_urls(state, ("study",))

    def __setstate__(self, state: dict) -> None:
        state = reveal_urls(state, ("study",))
        if isinstance(state["study"], tuple):
            url, name, sampler = state["study"]
            state["study"] = optuna.load_study(
                study_name=name, storage=sqlalchemy_url(url), sampler=sampler
            )
        self.__dict__.update(state)


def _storage_url(study: optuna.Study) -> str | None:
    storage = getattr(study, "_storage", None)
    storage = getattr(storage, "_backend", storage)  # optuna wraps RDBStorage in a cache
    url = getattr(storage, "url", None)
    return url if isinstance(url, str) else None


def create_stratum_study(
    storage: str, name: str, seed: int, startup: list[dict], budget: int = 0
) -> optuna.Study:
    """A TPE study whose first trials are `startup` (enqueued) and seeded random draws: with
    a `budget` no larger than those, every proposal is fixed by the seed alone, whatever
    order the results come back in (a study reruns to the same numbers)."""
    sampler = optuna.samplers.TPESampler(
        seed=seed, multivariate=True, n_startup_trials=max(len(startup), 4, budget)
    )
    study = optuna.create_study(
        study_name=name,
        storage=sqlalchemy_url(storage),
        sampler=sampler,
        direction="maximize",
        load_if_exists=True,
    )
    with warnings.catch_warnings():  # experimental in Optuna 5; dashboards show the name
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names([OBJECTIVE])  # not "Objective 0"
    for params in startup:
        study.enqueue_trial(params, skip_if_exists=True)
    return study


def close_running_trials(storage: str, study_key: str) -> int:
    """Close as FAIL (tagged `interrupted`) the trials left RUNNING in the Optuna studies
    of study `study_key` (its strata): the driver was stopped. Returns how many."""
    url = sqlalchemy_url(storage)
    closed = 0
    for name in optuna.get_all_study_names(url):
        if not name.startswith(f"{study_key}."):
            continue
        study = optuna.load_study(study_name=name, storage=url)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial = optuna.Trial(study, frozen._trial_id)
            trial.set_user_attr(INTERRUPTED, True)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            closed += 1
    return closed


def stratum_of(config: dict) -> str:
    """Which stratum a config belongs to: its `stratum` key (the stratum's Optuna study
    name), else, for configs without one, its size."""
    return str(config.get(Key.STRATUM, config.get(Key.SIZE)))


INTERRUPTED = "interrupted"  # user attr of an Optuna trial closed on resume


@dataclass
class RecoveredResult:
    """A search trial's result rebuilt from Optuna's storage (the shape of a Ray Result
    that `confirm_configs` reads: config, metrics, error)."""

    config: dict
    metrics: dict
    error: None = None


class StateFileSearcher(Searcher):
    """Ray saves a searcher with its experiment state and hands it back on Tuner.restore:
    both go through the subclass's `get_state` / `set_state`."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.get_state(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.set_state(pickle.load(file))


class StratifiedOptunaSearch(StateFileSearcher):
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
        self.reconciled = False

    def total_budget(self) -> int:
        return sum(stratum.budget for stratum in self.strata)

    def suggest(self, trial_id: str):
        self._reconcile_once()
        open_strata = [s for s in self.strata if s.suggested < s.budget]
        if not open_strata:
            return Searcher.FINISHED
        stratum = min(open_strata, key=lambda s: s.suggested)
        trial = stratum.study.ask()
        stratum.suggested += 1
        self.live[trial_id] = (stratum, trial)
        return {**self.define(trial, stratum.constants), Key.OPTUNA_TRIAL: trial.number}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._reconcile_once()
        if trial_id not in self.live:
            return
        self._report(self.live[trial_id][1], result)

    def _report(self, trial: optuna.Trial, result: dict) -> None:
        if self.metric not in result or Report.EPOCH not in result:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a step reported already (a resumed trial)
            try:
                trial.report(result[self.metric], step=int(result[Report.EPOCH]))
            except UpdateFinishedTrialError:
                pass  # told before the driver was killed; Ray re-ran it from a checkpoint

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        self._reconcile_once()
        if trial_id not in self.live:
            return
        stratum, trial = self.live.pop(trial_id)
        if result and not error:
            # A trial ASHA stops at a result reaches the searcher only here, not through
            # on_trial_result: keep that result among its intermediate values.
            self._report(trial, result)
        if error or not result:
            stratum.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        elif is_completed(result):
            # A trial that ran all its epochs: judge it by its best validation accuracy
            # (the weights it would keep), never by test accuracy.
            stratum.study.tell(trial, result[OBJECTIVE], skip_if_finished=True)
        else:
            stratum.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)

    # Ray saves this with its experiment state and hands it back on Tuner.restore.
    def get_state(self) -> dict:
        return {"live": {tid: (s.key, t.number) for tid, (s, t) in self.live.items()}}

    def set_state(self, state: dict) -> None:
        self._reconcile(state.get("live", {}))

    def results_not_in(self, results) -> list[RecoveredResult]:
        """Trials Optuna has as finished that are missing from Ray's `results`: after a
        resume, those that ended between Ray's last experiment snapshot and the kill. Their
        configs are rebuilt from the stored parameters, so the confirm phase still sees
        every search trial of the study."""
        known = {
            (stratum_of(r.config), r.config.get(Key.OPTUNA_TRIAL))
            for r in results
            if getattr(r, "config", None)
        }
        recovered = []
        for stratum in self.strata:
            for trial in stratum.study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
            ):
                if (stratum_of(stratum.constants), trial.number) in known:
                    continue
                fixed = optuna.trial.FixedTrial(trial.params, trial.number)
                config = {**self.define(fixed, stratum.constants), Key.OPTUNA_TRIAL: trial.number}
                if trial.state == TrialState.COMPLETE:
                    metrics = {OBJECTIVE: trial.value, Report.COMPLETED: True}
                elif trial.intermediate_values:
                    metrics = {OBJECTIVE: max(trial.intermediate_values.values())}
                else:
                    continue
                recovered.append(RecoveredResult(config, metrics))
        return recovered

    def _reconcile_once(self) -> None:
        if not self.reconciled:  # a fresh start, or a restore that found no searcher state
            self._reconcile({tid: (s.key, t.number) for tid, (s, t) in self.live.items()})

    def _reconcile(self, live: dict[str, tuple[str, int]]) -> None:
        """Make the in-memory bookkeeping agree with Optuna's storage (see the module doc)."""
        by_key = {s.key: s for s in self.strata}
        self.live = {}
        for stratum in self.strata:
            kept = {n: tid for tid, (key, n) in live.items() if key == stratum.key}
            trials = {t.number: t for t in stratum.study.get_trials(deepcopy=False)}
            for number, frozen in trials.items():
                if frozen.state != TrialState.RUNNING:
                    continue
                trial = optuna.Trial(stratum.study, frozen._trial_id)
                if number in kept:  # Ray continues this trial: re-attach it
                    self.live[kept[number]] = (by_key[stratum.key], trial)
                else:  # its Ray trial is gone with the killed driver
                    trial.set_user_attr(INTERRUPTED, True)
                    stratum.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            # A kept trial that Optuna already has finished (told just before the kill) is
            # not re-attached: Ray may run it again, but it is not told twice.
            stratum.suggested = sum(
                1
                for t in stratum.study.get_trials(deepcopy=False)
                if t.state != TrialState.WAITING
                and (not t.user_attrs.get(INTERRUPTED) or t.number in kept)  # Ray goes on
            )
        self.reconciled = True


class FixedConfigs(StateFileSearcher):
    """Hands out a given list of configurations, in order, once each (the confirm phase)."""

    def __init__(self, configs: list[dict], metric: str, mode: str = "max") -> None:
        super().__init__(metric=metric, mode=mode)
        self.pending = list(configs)

    def suggest(self, trial_id: str):
        return self.pending.pop(0) if self.pending else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        pass

    def get_state(self) -> dict:
        return {"pending": list(self.pending)}

    def set_state(self, state: dict) -> None:
        self.pending = list(state["pending"])
