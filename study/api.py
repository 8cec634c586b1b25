"""The service from Python: `study.run(...)` runs a study, `study.best_freeze(...)` reads
the latest finished one back; both return its typed answer (study.answer.model.Answer:
a SizeResult per (target, size); `to_frame()`, `best(...)`, `recommendation(...)`).

    import study

    answer = study.run("smoke")          # a preset, a YAML file, a dict or a StudyConfig
    answer.best(size=2).name             # 'lenet5 freeze-2'

They do what `study run` and `study best-freeze` do, with the same checks in the same
order: bad input raises study.errors.ConfigError or BadInput (NoStudyFound: nothing to
read) with the one line the command prints before its exit code 2, before Ray or MLflow
is imported. What the commands turn into exit codes otherwise propagates: a Ctrl-C
(study.stores.signals.Interrupted, a KeyboardInterrupt: the study is closed as
interrupted, `resume=True` continues it), a full disk (OSError ENOSPC).

`import study` stays cheap: study/__init__.py reaches this module only when `run` or
`best_freeze` is first asked for.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from study.errors import ConfigError

if TYPE_CHECKING:
    from study.answer.model import Answer
    from study.config.schema import StudyConfig

CONFIG_SOURCE = "config"  # how a dict's problems are placed (`config: unknown config key ...`)
YAML_SUFFIXES = (".yaml", ".yml")


def _is_file(config: str | os.PathLike) -> bool:
    """Whether `config` names a YAML file rather than a preset: a Path, a name with a
    folder or a YAML suffix, or a file that is there."""
    if not isinstance(config, str):
        return True
    return (
        config.endswith(YAML_SUFFIXES)
        or os.sep in config
        or "/" in config
        or Path(config).is_file()
    )


def study_config(config, tracking_uri: str | None = None) -> tuple[StudyConfig, str | None]:
    """(the StudyConfig, the `study run` command that would run it, or None) of `config`: a
    preset name, a YAML file's path, a dict or a StudyConfig, checked as `study run` checks
    it; `tracking_uri`, where given, is its MLflow store (over `stores.mlflow` and the
    environment's)."""
    from study.config.files import check_names, load_config, load_preset, parse_config
    from study.config.schema import StudyConfig

    command = None
    if isinstance(config, StudyConfig):
        check_names(config, CONFIG_SOURCE)  # the registries' names, as a file's are
        config = config.model_copy(update={"stores": config.stores.from_environment()})
    elif isinstance(config, Mapping):
        config = parse_config(dict(config), CONFIG_SOURCE)
    elif isinstance(config, str | os.PathLike) and _is_file(config):
        command = f"study run --config {os.fspath(config)}"
        config = load_config(config)
    elif isinstance(config, str):
        command = f"study run --preset {config}"
        config = load_preset(config)
    else:
        raise ConfigError(
            f"{CONFIG_SOURCE}: a preset name, a YAML file's path, a dict or a StudyConfig, "
            f"got {type(config).__name__}"
        )
    if tracking_uri is not None:
        config = with_tracking_uri(config, tracking_uri)
    return config, command


def with_tracking_uri(config: StudyConfig, tracking_uri: str) -> StudyConfig:
    """`config` with its MLflow store at `tracking_uri`. As in a config file, a password is
    refused there: it goes in the environment (STUDY_MLFLOW_DB), where Ray's restored
    experiments find it again (study.stores.urls)."""
    from study.stores.urls import ENV_MLFLOW, password, redact

    if not isinstance(tracking_uri, str) or not tracking_uri:
        raise ConfigError(f"tracking_uri: a store URL, got {tracking_uri!r}")
    if password(tracking_uri):
        raise ConfigError(
            f"tracking_uri: a password must not be passed here ({redact(tracking_uri)}); "
            f"leave it out and export the full URL as {ENV_MLFLOW}"
        )
    stores = config.stores.model_copy(update={"mlflow": tracking_uri})
    return config.model_copy(update={"stores": stores})


def run(
    config="default",
    *,
    resume: bool = False,
    verbose: bool = False,
    tracking_uri: str | None = None,
) -> Answer:
    """Run a study, as `study run` does, and return its answer.

    config: a preset name (`"default"`, `"smoke"`), a YAML file's path, a dict (the YAML's
    data) or a StudyConfig. resume: continue the latest unfinished study of this config
    (`--resume`). verbose: a line per finished trial and Ray's trial table (`--verbose`).
    tracking_uri: the MLflow store (default: the config's `stores.mlflow`, or the
    environment's STUDY_MLFLOW_DB / MLFLOW_TRACKING_URI). The stores land where the
    config puts them, relative to the working folder.
    """
    settings, command = study_config(config, tracking_uri)  # bad input: before Ray, MLflow
    from study.stages.context import RunOptions
    from study.stages.protocol import run_study
    from study.stores.signals import interruptible

    options = RunOptions(
        log=lambda line: print(line, flush=True), resume=resume, verbose=verbose, command=command
    )
    # Ctrl-C and SIGTERM close the study as interrupted, as for `study run`; a signal
    # handler can only be set in the main thread (elsewhere the caller owns stopping).
    main = threading.current_thread() is threading.main_thread()
    with interruptible() if main else contextlib.nullcontext():
        return run_study(settings, options)


def best_freeze(experiment: str | None = None, tracking_uri: str | None = None) -> Answer:
    """The answer of the latest finished study, read back from its MLflow store, as `study
    best-freeze` reads it. experiment: the study's name (default: the latest study of any
    name). tracking_uri: the store (default: STUDY_MLFLOW_DB, MLFLOW_TRACKING_URI, else
    sqlite:///mlflow.db in the working folder). Raises BadInput for a store that is not
    there, NoStudyFound when it holds no finished study of that name."""
    from study.cli.commands import default_tracking_uri
    from study.stores.checks import check_tracking_uri, existing_store

    uri = tracking_uri if tracking_uri is not None else default_tracking_uri()
    check_tracking_uri(existing_store(uri))  # one line, before MLflow is imported
    from study.answer.query import latest_study_run, study_answer
    from study.tracking import client as tracking

    client = tracking.client_for(uri)
    return study_answer(client, latest_study_run(client, experiment))
