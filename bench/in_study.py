"""The study machinery set up for a benchmark, as `study run` sets it up: a local Ray
runtime (study.tuning.runtime.local_ray), an MLflow experiment and parent run on a temp SQLite
store, the MLflow trial callback (study.tracking.trial_logger), and the confirm phase's Tuner
(study.tuning.tuner.confirm_tuner: `tune_trial` with reports, checkpoints every
`checkpoint_every` reports, reuse_actors) running a fixed list of trial configurations.
Everything lives in a temp folder removed afterwards.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from ray import tune

from search_spaces.strategies import strategy_label
from study.config.files import load_preset
from study.config.schema import StudyConfig
from study.stages.context import RunContext, search_labels, stage_counts
from study.stages.search import size_constants
from study.tracking import client as tracking
from study.tracking.trial_logger import MlflowTrialLogger
from study.tuning.runtime import local_ray
from study.tuning.tuner import confirm_tuner
from trainables.contract import ALL, Key, parse_size
from trainables.registry import get_arch


class Completions(tune.Callback):
    """When each trial finished, on the driver's clock (time.perf_counter)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.times.append(time.perf_counter())


@dataclass(frozen=True)
class Timing:
    """A Tuner's run: wall seconds from its creation to its end, and when its trials
    finished (seconds after its creation, in order), and its trials' results."""

    seconds: float
    completions: list[float]
    results: list = field(default_factory=list, repr=False)

    def per_trial(self) -> float:
        """Seconds between trial completions once the Tuner runs (one slot: the time
        each trial takes, its orchestration included, the Tuner's start excluded)."""
        done = self.completions
        return (done[-1] - done[0]) / (len(done) - 1)


@dataclass
class StudyWorld:
    config: StudyConfig
    logger: MlflowTrialLogger
    client: object
    parent: str
    experiment: str

    def context(self, key: str, targets: dict, sources: dict) -> RunContext:
        """The stages' run context (study.stages.context) of this "study" under study key
        `key`: its config's labels, its MLflow run and trial callback; lines printed."""
        config = self.config
        return RunContext(
            config=config,
            key=key,
            targets=targets,
            labels=search_labels(config),
            stages=stage_counts(config.search.architectures),
            client=self.client,
            experiment_id=self.experiment,
            parent=self.parent,
            sources=sources,
            logger=self.logger,
        )


def bench_config(
    folder: Path, checkpoint_every: int | None, num_cpus: int | None, preset: str = "smoke"
) -> StudyConfig:
    """A preset with every store in `folder`; checkpoints every `checkpoint_every` reports
    from the first (None: as the service's default has them, `checkpoint_after_s` too)."""
    base = load_preset(preset)
    stores = base.stores.model_copy(
        update={
            "mlflow": f"sqlite:///{folder / 'mlflow.db'}",
            "optuna": f"sqlite:///{folder / 'optuna.db'}",
            "artifacts": str(folder / "mlartifacts"),
            "ray_results": str(folder / "ray_results"),
            "features": str(folder / "features"),
        }
    )
    faults = base.fault_tolerance
    if checkpoint_every is not None:
        update = {"checkpoint_every": checkpoint_every, "checkpoint_after_s": 0}
        faults = faults.model_copy(update=update)
    resources = base.resources.model_copy(update={"num_cpus": num_cpus})
    return base.model_copy(
        update={"stores": stores, "fault_tolerance": faults, "resources": resources}
    )


@contextlib.contextmanager
def ray_and_folder(num_cpus: int | None):
    """A temp folder and a local Ray runtime, both gone afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, local_ray(num_cpus):
        yield Path(folder)


def study_world(
    folder: Path, name: str, archs, checkpoint_every: int | None, num_cpus=None, preset="smoke"
):
    """Config, MLflow parent run and trial callback of one benchmarked "study"."""
    config = bench_config(folder / name, checkpoint_every, num_cpus, preset)
    client = tracking.client_for(config.stores.mlflow)
    experiment = tracking.ensure_experiment(client, name, config.stores.artifacts)
    parent = tracking.start_study_run(client, experiment, name, {})
    logger = MlflowTrialLogger(client, experiment, parent, stage_counts(archs), strategy_label)
    return StudyWorld(config, logger, client, parent, experiment)


def trial_configs(config: StudyConfig, target, trials: list[dict]) -> list[dict]:
    """Full Tune configs (what the study's phases hand Ray) for `trials`, each a dict of
    arch, strategy, freeze, lr, weights and whatever else differs from `config`'s
    constants for the trial's size (default: the whole pool)."""
    defaults = {Key.PHASE: "confirm", Key.BACKBONE_LR_MULT: 1.0, Key.WEIGHT_DECAY: 0.0}
    configs = []
    for trial in trials:
        size = parse_size(trial.get(Key.SIZE, ALL))
        constants = size_constants(config, target, size)
        configs.append(constants | defaults | trial)
    return configs


def run_in_study(world: StudyWorld, name: str, target, sources, configs: list[dict]) -> Timing:
    """The study's Tuner running `configs` (one trial at a time on a runtime of 1 CPU)."""
    started, completions = time.perf_counter(), Completions()
    callbacks = [world.logger, completions]
    targets = {target.name: target}  # the trainable takes every target by name
    tuner = confirm_tuner(world.config, name, targets, sources, configs, callbacks)
    with contextlib.redirect_stdout(io.StringIO()):  # Ray's progress table: not the bench's
        results = tuner.fit()
    seconds = time.perf_counter() - started
    errors = [r.error for r in results if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed: {errors[0]}")
    return Timing(seconds, [t - started for t in completions.times], list(results))


def source_states(archs) -> dict[str, dict]:
    """Stand-in source checkpoints (52 classes, 1 channel, as the glyphs source): the
    benchmarks time training, not what the weights have learnt."""
    torch.manual_seed(1)
    return {
        arch: get_arch(arch).build(num_classes=52, in_channels=1).state_dict() for arch in archs
    }
