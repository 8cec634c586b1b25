"""The search phase: every (target, size, architecture, strategy label) tuned with the
same budget.

Each configuration is trained on the seed-0 subset and judged by validation accuracy
(never test accuracy); with `search.early_stopping`, ASHA stops poor ones early inside
their label (study.tuning.scheduler). The searcher tells Optuna (one study per target, size and label,
study.tuning.searcher). Every freeze boundary is a label of its own, so the answer covers
b = 0 through B for each architecture, plus scratch, lp-ft and the classical heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from search_spaces.transfer import Label, Ranges, define_label, grid_points
from study.config.schema import StudyConfig
from study.config.target import TargetConfig
from study.stages.context import RunContext
from study.stages.pretrain import weights_for
from study.stores.urls import redact
from study.tuning.progress import PhaseProgress
from study.tuning.searcher import StratifiedOptunaSearch, Stratum, create_stratum_study
from study.tuning.tuner import search_tuner
from trainables.contract import Key, Report, config_size
from trainables.datasets import TargetData

SEARCH_SEED = 0  # every search trial trains on this seed's subset (and the confirm's seed 0)


def trial_config(suggestion: dict, constants: dict, source: str, torchvision: bool = False) -> dict:
    """A Tune config: Optuna's suggestion, its (target, size)'s constants, the weight source."""
    weights = weights_for(suggestion[Key.STRATEGY], suggestion[Key.ARCH], source, torchvision)
    return {**suggestion, **constants, Key.WEIGHTS: weights}


def size_constants(
    config: StudyConfig, target: TargetData, size: int | None, settings: TargetConfig | None = None
) -> dict:
    """What every trial of one (target, size) shares (the search phase trains on seed 0's
    subset); `settings`: the target's config section (default: the study's first)."""
    settings = settings or config.target_list()[0]
    return {
        Key.PHASE: "search",
        Key.TARGET: settings.key,
        Key.DATASET: target.name,
        Key.SIZE: config_size(size),
        Key.SEED: SEARCH_SEED,
        Key.STEPS: config.training.steps_for(size),
        Key.REPORTS: config.training.reports,
        Key.BATCH_SIZE: config.training.batch_size,
        Key.AUGMENT: "+".join(settings.augment) or "none",
        Key.FEATURE_CACHE: config.training.feature_cache,
        Key.CACHE_DIR: str(Path(config.stores.features).resolve()),
        Key.PROBE_C: config.training.probe_C,
        Key.OPTIMIZER: config.training.optimizer,
    }


def search_budget(config: StudyConfig, labels: list[Label]) -> int:
    """Search trials in all: the same budget for every (target, size, architecture, label);
    `labels`: the study's (study.stages.context.search_labels)."""
    return config.search.trials_per_label * len(labels) * len(config.target_sizes())


def stratum_prefix(config: StudyConfig, study_key: str, target: str) -> str:
    """`<study_key>` for a single-target study (the names it always had), else
    `<study_key>.<target>`: every target has Optuna studies of its own."""
    return f"{study_key}.{target}" if config.several_targets() else study_key


def make_searcher(
    config: StudyConfig, targets: dict[str, TargetData], study_key: str, labels: list[Label]
):
    """One Optuna study per (target, size, architecture, strategy label of `labels`), named
    `<study_key>[.<target>].size-<size>.<arch>.<label>` (the target only when the study has
    several), each with `trials_per_label` trials, behind one Ray searcher that hands them
    out round-robin. Each study first tries its main parameter spread evenly over its range
    (search_spaces.transfer.grid_points); the sampler's seed is fixed per study, so the
    proposals do not depend on timing."""
    ranges = config.search.ranges()
    budget = config.search.trials_per_label
    strata, storage = [], config.stores.optuna
    for index, (settings, size) in enumerate(config.target_sizes()):
        constants = size_constants(config, targets[settings.key], size, settings)
        prefix = stratum_prefix(config, study_key, settings.key)
        for number, label in enumerate(labels):
            name = f"{prefix}.size-{constants[Key.SIZE]}.{label.arch}.{label.name}"
            study = StratumStudy(storage, name, config.search.seed + 1000 * index + number, budget)
            strata.append(label_stratum(study, label, ranges, constants))

    def suggest(trial, constants):
        return trial_config(
            suggest_label(trial, constants, ranges),
            constants,
            config.source.dataset,
            torchvision=config.source.weights == "torchvision",
        )

    return StratifiedOptunaSearch(strata, suggest, metric=Report.VAL_ACC)


@dataclass(frozen=True)
class StratumStudy:
    """The Optuna study of one stratum: where it is stored, its name, its sampler's seed,
    and its trial budget."""

    storage: str
    name: str
    seed: int
    budget: int


def label_stratum(study: StratumStudy, label: Label, ranges: Ranges, constants: dict) -> Stratum:
    """The Optuna study `study.name` of one strategy label, with `study.budget` trials: its
    main parameter (lr, C or k) tried at `budget` points spread over its range first. Every
    config it gives holds `constants` (what the size's trials share) and the label."""
    name, budget = study.name, study.budget
    startup = grid_points(label.strategy, ranges, budget)
    optuna_study = create_stratum_study(study.storage, name, study.seed, startup, budget)
    fixed = {Key.ARCH: label.arch, Key.STRATEGY: label.strategy, Key.FREEZE: label.freeze}
    return Stratum(name, optuna_study, budget, constants | fixed | {Key.STRATUM: name})


def suggest_label(trial, constants: dict, ranges: Ranges) -> dict:
    """Optuna's suggestion for the label of a stratum; `constants`: its (target, size)'s."""
    fixed = [constants[key] for key in (Key.ARCH, Key.STRATEGY, Key.FREEZE)]
    return define_label(trial, *fixed, ranges)


def run_search(ctx: RunContext) -> list:
    """Every search trial's result, including those a resumed study recovers from Optuna."""
    config, key = ctx.config, ctx.key
    searcher = make_searcher(config, ctx.targets, key, ctx.labels)
    budget = search_budget(config, ctx.labels)
    ctx.log(
        f"search phase: {budget} trials = {config.search.trials_per_label} "
        f"per (target, size, architecture, strategy label) x {len(ctx.labels)} labels x "
        f"{len(config.target_sizes())} (target, size) pairs; Optuna studies {key}.* in "
        f"{redact(config.stores.optuna)}"
    )
    progress = PhaseProgress("search", budget, ctx.verbose)
    name = f"{key}-search"
    callbacks = [ctx.logger, progress]
    tuner = search_tuner(config, name, ctx.targets, ctx.sources, searcher, callbacks, ctx.verbose)
    results = tuner.fit()
    # After a resume, Optuna may hold trials that ended after Ray's last snapshot.
    return [*results, *searcher.results_not_in(results)]
