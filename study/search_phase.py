"""The search phase: per target dataset size, Optuna proposes configurations and Ray runs them.

Each configuration is trained on the seed-0 subset and judged by validation accuracy;
ASHA stops poor ones early (study.scheduler), and the searcher tells Optuna (one study
per size, study.searcher).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from search_spaces.transfer import coverage_points, define
from study.config import StudyConfig
from study.searcher import StratifiedOptunaSearch, Stratum, create_stratum_study
from study.sources import weights_for
from study.stores import redact
from study.tuner import search_tuner
from trainables.contract import Key, Report
from trainables.datasets import TargetData


def trial_config(suggestion: dict, constants: dict, source: str, torchvision: bool = False) -> dict:
    """A Tune config: Optuna's suggestion, the stratum's constants, the weight source."""
    weights = weights_for(suggestion[Key.STRATEGY], suggestion[Key.ARCH], source, torchvision)
    return {**suggestion, **constants, Key.WEIGHTS: weights}


def stratum_constants(config: StudyConfig, target: TargetData, size: int | None) -> dict:
    """What every trial of one size shares (the search phase trains on seed 0's subset)."""
    return {
        Key.PHASE: "search",
        Key.DATASET: target.name,
        Key.SIZE: "all" if size is None else size,
        Key.SEED: 0,
        Key.STEPS: config.training.steps_for(size),
        Key.REPORTS: config.training.reports,
        Key.BATCH_SIZE: config.training.batch_size,
        Key.AUGMENT: "+".join(config.target.augment) or "none",
        Key.FEATURE_CACHE: config.training.feature_cache,
        Key.CACHE_DIR: str(Path(config.stores.features).resolve()),
        Key.LP_FRAC: config.training.lp_frac,
    }


def make_searcher(config: StudyConfig, target: TargetData, study_key: str, stages: dict[str, int]):
    """One Optuna study per size (`<study_key>.size-<size>`) behind one Ray searcher."""
    space = partial(
        define, stages=stages, strategies=config.search.strategies, ranges=config.search.ranges()
    )
    startup = coverage_points(stages, config.search.strategies)
    strata = []
    for index, size in enumerate(config.sizes()):
        constants = stratum_constants(config, target, size)
        name = f"{study_key}.size-{constants[Key.SIZE]}"
        study = create_stratum_study(
            config.stores.optuna, name, config.search.seed + index, startup
        )
        strata.append(Stratum(name, study, config.search.trials_per_size, constants))

    def suggest(trial, constants):
        return trial_config(
            space(trial),
            constants,
            config.source.dataset,
            torchvision=config.source.weights == "torchvision",
        )

    return StratifiedOptunaSearch(strata, suggest, metric=Report.VAL_ACC)


def run_search(config: StudyConfig, study_key: str, target, sources, stages, logger, log) -> list:
    """Every search trial's result, including those a resumed study recovers from Optuna."""
    searcher = make_searcher(config, target, study_key, stages)
    log(
        f"search phase: {config.search.trials_per_size} trials for each of "
        f"{len(config.sizes())} sizes; Optuna studies {study_key}.size-* in "
        f"{redact(config.stores.optuna)}"
    )
    results = search_tuner(config, f"{study_key}-search", target, sources, searcher, [logger]).fit()
    # After a resume, Optuna may hold trials that ended after Ray's last snapshot.
    return [*results, *searcher.results_not_in(results)]
