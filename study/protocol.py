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

from search_spaces.strategies import get_strategy, strategy_label
from search_spaces.transfer import coverage_points, define
from study import report, tracking
from study.config import ConfigError, StudyConfig
from study.query import best_per_size, study_confirm_rows
from study.searcher import OBJECTIVE, StratifiedOptunaSearch, Stratum, create_stratum_study
from study.stores import redact
from study.tuner import confirm_tuner, ray_runtime, search_tuner
from trainables.contract import Key, Report, is_completed
from trainables.data import Preprocessing, TargetData, load_target, preprocessing_for
from trainables.pretrain import PretrainSettings, pretrain
from trainables.registry import get_arch


def torchvision_weights(arch: str) -> str:
    """The weight source of `arch` under `source.weights: torchvision` (its first enum)."""
    return f"torchvision:{get_arch(arch).torchvision_weights[0]}"


def check_torchvision_weights(config: StudyConfig) -> None:
    """Every architecture has torchvision weights, and they are in the local torch cache."""
    from trainables.weights import WeightsNotCached, torchvision_cache_file

    for arch in config.search.architectures:
        if not get_arch(arch).torchvision_weights:
            raise ConfigError(
                f"search.architectures: {arch} has no torchvision weights, which "
                f"source.weights: torchvision needs; use source.weights: study for it"
            )
        path = torchvision_cache_file(torchvision_weights(arch).partition(":")[2])
        if not path.is_file():
            try:  # the loader's own message says how to fetch the file
                from trainables.weights import torchvision_state

                torchvision_state(torchvision_weights(arch).partition(":")[2])
            except WeightsNotCached as error:
                raise ConfigError(str(error)) from None


def target_preprocessing(config: StudyConfig) -> Preprocessing:
    """Inputs as the weights expect them. Study-pretrained weights come from the rendered
    glyphs: grey images normalised with their grey level (`channels: auto` is 1; 3 channels
    feed RGB to a first conv whose grey filters are spread over R, G and B). torchvision
    weights bring their own preprocessing: RGB, ImageNet's mean and std, their resize ratio."""
    channels = None if config.target.channels == "auto" else config.target.channels
    if config.source.weights == "torchvision":
        weights = torchvision_weights(config.search.architectures[0])
        return preprocessing_for(weights, config.target.image_size, channels)
    return Preprocessing(size=config.target.image_size, channels=channels or 1)


def load_checked_target(config: StudyConfig) -> TargetData:
    """The target dataset, with every requested size checked against it (driver side).

    Every image is read here, so a missing folder, an empty class or an unreadable file
    stops the study with one line before any trial starts.
    """
    if config.source.weights == "torchvision":
        check_torchvision_weights(config)
    try:
        target = load_target(
            config.target.dataset,
            config.target.val_per_class,
            config.target.test_per_class,
            prep=target_preprocessing(config),
            root=config.target.root,
            download=config.target.download,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    largest = target.max_size()
    for size in config.sizes():
        if size is not None and size > largest:
            raise ConfigError(
                f"target.sizes: {size} examples per class is more than {target.name} has "
                f"(its training pool holds {largest} per class, class {target.smallest_class()!r}"
                f" the fewest); allowed: 1..{largest} or 'all'"
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
    needs_weights = any(get_strategy(s).needs_weights for s in config.search.strategies)
    if not needs_weights or config.source.weights == "torchvision":
        return {}  # torchvision weights: each trial loads them from the local torch cache
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


def trial_config(suggestion: dict, constants: dict, source: str, torchvision: bool = False) -> dict:
    if not get_strategy(suggestion[Key.STRATEGY]).needs_weights:
        weights = "none"
    elif torchvision:
        weights = torchvision_weights(suggestion[Key.ARCH])
    else:
        weights = f"study:{source}"
    return {**suggestion, **constants, Key.WEIGHTS: weights}


def stratum_constants(config: StudyConfig, target: TargetData, size: int | None) -> dict:
    return {
        "phase": "search",
        "dataset": target.name,
        "size": "all" if size is None else size,
        "seed": 0,
        "steps": config.training.steps_for(size),
        "reports": config.training.reports,
        "batch_size": config.training.batch_size,
        "augment": "+".join(config.target.augment) or "none",
        "feature_cache": config.training.feature_cache,
        "cache_dir": str(Path(config.stores.features).resolve()),
        "lp_frac": config.training.lp_frac,
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
        return trial_config(
            space(trial),
            constants,
            config.source.dataset,
            torchvision=config.source.weights == "torchvision",
        )

    return StratifiedOptunaSearch(strata, suggest, metric=Report.VAL_ACC)


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
        key = (str(config[Key.SIZE]), config[Key.STRATEGY])
        rank = (is_completed(metrics), metrics[OBJECTIVE])
        if key not in best or rank > best[key][0]:
            best[key] = (rank, config)
    chosen = []
    for key in sorted(best):
        base = {k: v for k, v in best[key][1].items() if k != Key.OPTUNA_TRIAL}
        chosen += [{**base, Key.PHASE: "confirm", Key.SEED: seed} for seed in range(seeds)]
    return chosen


MAX_CONFIRM_TOPUPS = 3  # reruns of lost confirm trials before the study reports what it has


def unconfirmed(client, parent: str, configs: list[dict]) -> list[dict]:
    """The confirm configurations no trial has finished or failed on yet (lost ones)."""
    handled = {
        tuple(run.data.tags.get(tag) for tag in CONFIRM_KEY_TAGS)
        for run in tracking.child_runs(client, parent, phase="confirm")
        if run.info.status in ("FINISHED", "FAILED")
    }
    return [c for c in configs if confirm_key(c) not in handled]


CONFIRM_KEY_TAGS = (
    tracking.TAG_SIZE,
    tracking.TAG_SEED,
    tracking.TAG_ARCH,
    tracking.TAG_STRATEGY_LABEL,
)


def confirm_key(config: dict) -> tuple[str, ...]:
    label = strategy_label(config["strategy"], config["freeze"])
    return (str(config["size"]), str(config["seed"]), config["arch"], label)


def run_confirm(config, study_key, target, sources, to_confirm, logger, client, parent, log):
    """Run the confirm phase until every configuration has a finished run.

    A restored confirm experiment only knows the trials of Ray's last snapshot: trials the
    killed driver had queued after it are lost with it. MLflow says which configurations
    finished, so the rest run again in a fresh experiment (`-confirm-1`, ...), which a
    later resume restores in turn.
    """
    pending, attempt = to_confirm, 0
    while pending and attempt <= MAX_CONFIRM_TOPUPS:
        name = f"{study_key}-confirm" + (f"-{attempt}" if attempt else "")
        if attempt:
            log(f"confirm phase: {len(pending)} configurations have no finished run; running them")
        confirm_tuner(config, name, target, sources, pending, [logger]).fit()
        pending, attempt = unconfirmed(client, parent, to_confirm), attempt + 1


# Sections that define a study's question: `--resume` refuses a config that changed them.
QUESTION_SECTIONS = ("target", "source", "training", "search")


def study_to_resume(client, config: StudyConfig):
    """The latest study run of this experiment, for `study run --resume` (None: none yet).

    Raises ConfigError when the config's question differs from the one that run asked.
    """
    experiment = client.get_experiment_by_name(config.name)
    previous = tracking.latest_study_run(client, experiment.experiment_id) if experiment else None
    if previous is None:
        return None
    try:
        then = json.loads(previous.data.params.get("config", "{}"))
    except json.JSONDecodeError:  # cut at MLflow's parameter length: nothing to compare
        return previous
    now = config.model_dump(mode="json")
    changed = [key for key in QUESTION_SECTIONS if key in then and then[key] != now[key]]
    if changed:
        sections = f"section{'s' if len(changed) > 1 else ''} {', '.join(changed)}"
        raise ConfigError(
            f"--resume: the config's {sections} changed since study run "
            f"{previous.info.run_id} began; run without --resume to start a new study"
        )
    return previous


def run_study(config: StudyConfig, log=print, resume: bool = False) -> list[dict]:
    """Run the whole study; returns the best-freeze answer (one entry per size).

    With `resume`, continue the experiment's latest study if it did not finish (the
    driver was killed, or it failed): same parent run, same Optuna studies, the Ray
    experiments restored from `stores.ray_results`.
    """
    target = load_checked_target(config)  # bad input stops here, before any store is touched
    stages = {arch: get_arch(arch).num_stages for arch in config.search.architectures}

    client = tracking.client_for(config.stores.mlflow)
    previous = study_to_resume(client, config) if resume else None
    if previous is not None and previous.info.status == "FINISHED":
        log(
            f"study {config.name}: MLflow run {previous.info.run_id} has finished; nothing to resume"
        )
        return best_per_size(study_confirm_rows(client, previous.info.run_id))
    experiment_id = tracking.ensure_experiment(client, config.name, config.stores.artifacts)
    if previous is not None:
        parent = tracking.reopen_study_run(client, previous)
        log(f"study {config.name}: resuming MLflow run {parent} in {redact(config.stores.mlflow)}")
    else:
        if resume:
            log(f"study {config.name}: no earlier study to resume; starting a new one")
        parent = tracking.start_study_run(
            client,
            experiment_id,
            config.name,
            {"config": json.dumps(config.model_dump(mode="json"))},
        )
        log(f"study {config.name}: MLflow run {parent} in {redact(config.stores.mlflow)}")
    try:
        sources = pretrain_sources(config, client, log)
        logger = tracking.MlflowTrialLogger(client, experiment_id, parent, stages, strategy_label)
        study_key = f"{config.name}.{parent[:8]}"
        with ray_runtime(config):
            searcher = make_searcher(config, target, study_key, stages)
            log(
                f"search phase: {config.search.trials_per_size} trials for each of "
                f"{len(config.sizes())} sizes; Optuna studies {study_key}.size-* in "
                f"{redact(config.stores.optuna)}"
            )
            results = search_tuner(
                config, f"{study_key}-search", target, sources, searcher, [logger]
            ).fit()
            # After a resume, Optuna may hold trials that ended after Ray's last snapshot.
            results = [*results, *searcher.results_not_in(results)]
            to_confirm = confirm_configs(results, config.target.seeds)
            log(
                f"confirm phase: {len(to_confirm)} trials ({config.target.seeds} seeds per "
                f"best configuration of each strategy and size)"
            )
            run_confirm(config, study_key, target, sources, to_confirm, logger, client, parent, log)
        interrupted = tracking.close_interrupted_runs(client, parent)
        if interrupted:
            log(f"closed {interrupted} MLflow runs of trials the killed driver had started")
        answer = best_per_size(study_confirm_rows(client, parent))
        report.log_report(client, parent, answer, study_confirm_rows(client, parent))
    except BaseException:
        client.set_terminated(parent, "FAILED")
        raise
    client.set_terminated(parent, "FINISHED")
    return answer
