"""Early stopping inside each stratum: one ASHA per (target, size, architecture, label).

All strata share one Ray Tune experiment, but their accuracies are not comparable (1
example per class tops out far below the full set), so a single ASHA would stop every
small-size trial against the large sizes' rungs. This scheduler keeps one ASHA per value
of a trial config key (the study's: Key.STRATUM, the stratum's Optuna study; by default
the size) and hands each trial to its own.
"""

from __future__ import annotations

from collections.abc import Callable

from ray.tune.schedulers import FIFOScheduler, TrialScheduler


class PerStratumScheduler(FIFOScheduler):
    def __init__(self, make: Callable[[], TrialScheduler], key: str = "size") -> None:
        super().__init__()
        self.make = make
        self.key = key
        self.schedulers: dict[str, TrialScheduler] = {}
        self.search_properties: dict = {}

    def set_search_properties(self, metric, mode, **spec) -> bool:
        self.search_properties = {"metric": metric, "mode": mode, **spec}
        return all(s.set_search_properties(metric, mode, **spec) for s in self.schedulers.values())

    def _of(self, trial) -> TrialScheduler:
        group = str(trial.config[self.key])
        if group not in self.schedulers:
            scheduler = self.make()
            if self.search_properties:
                scheduler.set_search_properties(**self.search_properties)
            self.schedulers[group] = scheduler
        return self.schedulers[group]

    def on_trial_add(self, tune_controller, trial):
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial):
        self._of(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        self._of(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "\n".join(
            f"{self.key}={key}: {s.debug_string()}" for key, s in self.schedulers.items()
        )
