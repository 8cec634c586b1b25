"""The study protocol: validate, pretrain, search per size, confirm over seeds, report.

search:  for every size, Optuna proposes configurations; each is trained on the seed-0
         subset and judged by validation accuracy; ASHA stops poor ones early.
confirm: the best configuration of each strategy (by validation accuracy) is retrained on
         every seed's subset. The answer is the mean test accuracy over those seeds, so
         test accuracy is only ever read, never used to choose.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import partial
from pathlib import Path

from search_spaces.transfer import coverage_points, define, strategy_label
from study import report, tracking
from study.config import ConfigError, StudyConfig
from study.query import best_per_size, study_confirm_rows
from study.searcher import (
    OBJECTIVE,
    OBJECTIVE_DONE,
    StratifiedOptunaSearch,
    Stratum,
    create_stratum_study,
)
from study.tuner import confirm_tuner, ray_runtime, search_tuner
from trainables.data import TargetData, load_target
from trainables.pretrain import PretrainSettings, pretrain
from trainables.registry import get_arch


def load_checked_target(config: StudyConfig) -> TargetData:
    """The target dataset, with every requested size checked against it (driver side)."""
    try:
        target = load_target(
            config.target.dataset, config.target.val_per_class, config.target.test_per_class
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    largest = target.max_size()
    for size in config.sizes():
        if size is not None and size > largest:
            raise ConfigError(
                f"target.sizes: {size} examples per class is more than {target.name} has "
                f"(its training pool holds {largest} per class); allowed: 1..{largest} or 'all'"
            )
    return target


def pretrain_settings(config: StudyConfig) -> PretrainSettings:
    src = config.source
    return PretrainSettings(
        source=src.dataset,
        images=src.images,
        epochs=src.epochs,
        batch_size=src.batch_size,
        lr=src.lr,
        seed=src.seed,
    )


def pretrain_sources(config: StudyConfig, client, log=print) -> dict[str, dict]:
    """Source checkpoints for every architecture, trained once and cached."""
    if set(config.search.strategies) == {"scratch"}:
        return {}
    settings = pretrain_settings(config)
    sources = {}
    for arch in config.search.architectures:
        checkpoint = pretrain(arch, settings, Path(config.stores.checkpoints), log=log)
        if checkpoint.trained_now:
            tracking.record_pretraining(
                client, config.stores.artifacts, checkpoint, asdict(settings)
            )
        else:
            log(
                f"source checkpoint for {arch}: {checkpoint.path} (cached, "
                f"source val_acc {checkpoint.val_acc:.3f})"
            )
        sources[arch] = checkpoint.state_dict
    return sources


def trial_config(suggestion: dict, constants: dict, source: str) -> dict:
    weights = "none" if suggestion["strategy"] == "scratch" else f"study:{source}"
    return {**suggestion, **constants, "weights": weights}


def stratum_constants(config: StudyConfig, target: TargetData, size: int | None) -> dict:
    return {
        "phase": "search",
        "dataset": target.name,
        "size": "all" if size is None else size,
        "seed": 0,
        "steps": config.training.steps_for(size),
        "reports": config.training.reports,
        "batch_size": config.training.batch_size,
    }


def make_searcher(config: StudyConfig, target: TargetData, study_key: str, stages: dict[str, int]):
    space = partial(
        define, stages=stages, strategies=config.search.strategies, ranges=config.search.ranges()
    )
    startup = coverage_points(stages, config.search.strategies)
    strata = []
    for index, size in enumerate(config.sizes()):
        constants = stratum_constants(config, target, size)
        name = f"{study_key}.size-{constants['size']}"
        study = create_stratum_study(
            config.stores.optuna, name, config.search.seed + index, startup
        )
        strata.append(Stratum(name, study, config.search.trials_per_size, constants))

    def suggest(trial, constants):
        return trial_config(space(trial), constants, config.source.dataset)

    return StratifiedOptunaSearch(strata, suggest, metric="val_acc")


def confirm_configs(results, seeds: int) -> list[dict]:
    """The best search configuration per (size, strategy), once per seed.

    Trials that ran to the end rank above trials ASHA stopped early; within each group the
    best validation accuracy wins. A strategy whose every trial was stopped early is still
    confirmed (with its best stopped trial), so every strategy gets an answer.
    """
    best: dict[tuple, tuple[tuple, dict]] = {}
    for result in results:
        metrics = result.metrics or {}
        if result.error or OBJECTIVE not in metrics:
            continue
        config = result.config
        key = (str(config["size"]), config["strategy"])
        rank = (OBJECTIVE_DONE in metrics, metrics[OBJECTIVE])
        if key not in best or rank > best[key][0]:
            best[key] = (rank, config)
    chosen = []
    for key in sorted(best):
        base = {k: v for k, v in best[key][1].items() if k != "optuna_trial"}
        chosen += [{**base, "phase": "confirm", "seed": seed} for seed in range(seeds)]
    return chosen


def run_study(config: StudyConfig, log=print) -> list[dict]:
    """Run the whole study; returns the best-freeze answer (one entry per size)."""
    target = load_checked_target(config)  # bad input stops here, before any store is touched
    stages = {arch: get_arch(arch).num_stages for arch in config.search.architectures}

    client = tracking.client_for(config.stores.mlflow)
    experiment_id = tracking.ensure_experiment(client, config.name, config.stores.artifacts)
    parent = tracking.start_study_run(
        client, experiment_id, config.name, {"config": json.dumps(config.model_dump(mode="json"))}
    )
    log(f"study {config.name}: MLflow run {parent} in {config.stores.mlflow}")
    try:
        sources = pretrain_sources(config, client, log)
        logger = tracking.MlflowTrialLogger(client, experiment_id, parent, stages, strategy_label)
        study_key = f"{config.name}.{parent[:8]}"
        with ray_runtime(config):
            searcher = make_searcher(config, target, study_key, stages)
            log(
                f"search phase: {config.search.trials_per_size} trials for each of "
                f"{len(config.sizes())} sizes; Optuna studies {study_key}.size-* in {config.stores.optuna}"
            )
            results = search_tuner(
                config, f"{study_key}-search", target, sources, searcher, [logger]
            ).fit()
            to_confirm = confirm_configs(results, config.target.seeds)
            log(
                f"confirm phase: {len(to_confirm)} trials ({config.target.seeds} seeds per "
                f"best configuration of each strategy and size)"
            )
            confirm_tuner(
                config, f"{study_key}-confirm", target, sources, to_confirm, [logger]
            ).fit()
        answer = best_per_size(study_confirm_rows(client, parent))
        report.log_report(client, parent, answer, study_confirm_rows(client, parent))
    except BaseException:
        client.set_terminated(parent, "FAILED")
        raise
    client.set_terminated(parent, "FINISHED")
    return answer
