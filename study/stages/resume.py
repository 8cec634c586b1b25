"""`study run --resume`: which study run to continue, and whether the config still fits it.

The config a study run began with is its `config.yaml` artifact (study.tracking.client); a
resume that would change the question (target, source, training or search) is refused,
since its trials would no longer answer the same question as the ones already run. That
is checked twice: before Ray starts (check_resume, reading the store only), and again when
the study run is reopened (study_to_resume).
"""

from __future__ import annotations

from study.config.schema import StudyConfig
from study.errors import ConfigError
from study.stores.urls import sqlite_path
from study.tracking import client as tracking

# Sections that define a study's question: `--resume` refuses a config that changed them.
QUESTION_SECTIONS = ("target", "targets", "source", "training", "search")


def study_to_resume(client, config: StudyConfig):
    """The latest study run of this experiment, for `study run --resume` (None: none yet).

    Raises ConfigError when the config's question differs from the one that run asked,
    or when the run has no stored config to compare with.
    """
    previous = tracking.latest_study_run(client, tracking.experiment_ids(client, config.name))
    if previous is None:
        return None
    then = tracking.study_config(client, previous.info.run_id)
    if then is None:
        raise ConfigError(
            f"--resume: study run {previous.info.run_id} has no {tracking.CONFIG_ARTIFACT} "
            f"to check the config against; run without --resume to start a new study"
        )
    now = config.model_dump(mode="json")
    changed = [key for key in QUESTION_SECTIONS if then.get(key) != now.get(key)]
    if changed:
        sections = f"section{'s' if len(changed) > 1 else ''} {', '.join(changed)}"
        raise ConfigError(
            f"--resume: the config's {sections} changed since study run "
            f"{previous.info.run_id} began; run without --resume to start a new study"
        )
    return previous


def check_resume(config: StudyConfig) -> None:
    """The refusals of study_to_resume, before Ray starts (`study run --resume`'s load
    phase): the store is read, never written; a SQLite store that does not exist yet has
    no study to resume and is left uncreated (opening it would create it)."""
    path = sqlite_path(config.stores.mlflow)
    if path is not None and not path.is_file():
        return
    study_to_resume(tracking.client_for(config.stores.mlflow), config)
