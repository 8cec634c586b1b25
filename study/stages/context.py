"""What every stage of one study run shares: the RunContext, built once per study by
study.stages.protocol after the study run is opened, and the few things it is made of.

The study's key (`<name>.<first 8 of the parent run id>`, the prefix of its Optuna studies
and Ray experiments) and its (architecture, strategy label) pairs are computed here and
nowhere else; the stages read them off the context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from search_spaces.strategies import strategy_label
from search_spaces.transfer import Label, labels
from study.config.schema import StudyConfig
from study.tracking.dataset_inputs import training_subsets
from study.tracking.trial_logger import MlflowTrialLogger
from trainables.datasets import TargetData
from trainables.registry import get_arch


def study_key(name: str, parent: str) -> str:
    """The key of study `name` in parent run `parent`: its Optuna studies are
    `<key>[.<target>].size-...` and its Ray experiments `<key>-search`, `<key>-confirm`."""
    return f"{name}.{parent[:8]}"


def stage_counts(archs: Iterable[str]) -> dict[str, int]:
    """Each architecture's number of stages (its freeze boundaries are 0..that)."""
    return {arch: get_arch(arch).num_stages for arch in archs}


def search_labels(config: StudyConfig) -> list[Label]:
    """Every (architecture, strategy label) the study tunes and confirms, at every size."""
    return labels(stage_counts(config.search.architectures), config.search.strategies)


@dataclass(frozen=True)
class RunOptions:
    """How `study run` was asked to run: where lines go, `--resume`, `--verbose`, and the
    command that started it (for the experiment's description)."""

    log: Callable[[str], None] = print
    resume: bool = False
    verbose: bool = False
    command: str | None = None


@dataclass
class RunContext:
    """One study run, as its stages see it.

    `sources` (the pretrained state dicts by architecture) is filled in once the pretrain
    stage has run, and `logger` (the trial callback) once the similarity stage has; every
    other field is set when the context is built.
    """

    config: StudyConfig
    key: str  # study_key(config.name, parent)
    targets: dict[str, TargetData]  # the loaded targets by name (TargetConfig.key)
    labels: list[Label]  # search_labels(config)
    stages: dict[str, int]  # stage_counts(config.search.architectures)
    client: object  # the MLflow client
    experiment_id: str
    parent: str  # the study's MLflow run id
    log: Callable[[str], None] = print
    verbose: bool = False
    sources: dict[str, dict] = field(default_factory=dict)
    logger: MlflowTrialLogger | None = None


def trial_logger(ctx: RunContext) -> MlflowTrialLogger:
    """The Ray callback that mirrors each trial of the study into an MLflow child run of
    `ctx.parent`, with the training subset of each trial as its dataset input."""
    subsets = training_subsets(ctx.config, ctx.targets)
    return MlflowTrialLogger(
        ctx.client, ctx.experiment_id, ctx.parent, ctx.stages, strategy_label, subsets
    )
