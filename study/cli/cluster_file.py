"""Checks of a Ray cluster launcher file (cluster.yaml) against a study, for `study validate`.

Ray's own validation (`prepare_config` then `validate_config`, what `ray up` runs) comes
first; then what a study needs from the cluster: the project copied to the nodes and
installed there, no store password written in the file, and a worker node type that
can hold one trial (`resources.cpu_per_trial`, `resources.gpu_per_trial`).
Nothing is started and nothing is contacted.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path

from study.stores.urls import password, redact

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


@contextlib.contextmanager
def _quiet():
    """Ray's launcher code logs INFO lines while it fills defaults: keep stderr to problems."""
    log = logging.getLogger("ray.autoscaler")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        log.setLevel(level)


def _ray_validation(raw: dict) -> str | None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        with _quiet():
            validate_config(prepare_config(raw))
    except (Exception, SystemExit) as error:  # Ray's checks raise many kinds, or exit
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        where = "/".join(str(p) for p in getattr(error, "absolute_path", []) or [])
        line = message.strip().splitlines()[0] if message.strip() else type(error).__name__
        return f"Ray's validation failed{' at ' + where if where else ''}: {line}"
    return None


def _prepared(raw: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config

    with _quiet():
        return prepare_config(raw)


def cluster_problems(path: str | Path, config=None) -> list[str]:
    """One line per problem of the cluster file (and of a study config on it); [] if none."""
    from study.config.files import read_yaml
    from study.errors import ConfigError

    path = Path(path)
    name = str(path)
    try:
        raw = read_yaml(path, "cluster file")
    except ConfigError as error:
        return [str(error)]
    if not isinstance(raw, dict):
        return [f"{name}: a cluster file must be a YAML mapping, got {type(raw).__name__}"]

    problems = []
    failed = _ray_validation(raw)
    if failed:
        problems.append(f"{name}: {failed}")

    for text in _strings(raw):
        for url in URL.findall(text):
            if password(url):
                problems.append(
                    f"{name}: a password is written in the file ({redact(url)}); "
                    f"take it from the environment (STUDY_MLFLOW_DB, STUDY_OPTUNA_DB)"
                )

    setup = [str(c) for c in (raw.get("setup_commands") or [])]
    setup += [str(c) for c in (raw.get("head_setup_commands") or [])]
    if not any("pip install" in command for command in setup):
        problems.append(
            f"{name}: no setup command installs the project (e.g. "
            f"`cd ~/transfer-study && python3 -m pip install -e '.[postgres]'`)"
        )
    # `ray up` reads local paths from where it runs: next to the file, or here.
    bases = {path.resolve().parent, Path.cwd()}
    mounts = raw.get("file_mounts") or {}
    if not any(
        (base / Path(str(source)).expanduser()).joinpath("pyproject.toml").is_file()
        for source in mounts.values()
        for base in bases
    ):
        problems.append(
            f"{name}: no file_mounts entry copies the project (e.g. "
            f'"~/transfer-study": "."  next to pyproject.toml)'
        )

    if config is not None and not failed:
        problem = _trial_fits(name, _prepared(raw), config)
        if problem:
            problems.append(problem)
    return problems


def _trial_fits(name: str, prepared: dict, config) -> str | None:
    """A worker node type must hold one trial (study.tuning.runtime.node_type_fits: node
    types that leave their resources to Ray's detection are given the benefit of the doubt)."""
    from study.tuning.runtime import node_type_fits  # imports Ray, as the checks before did

    cpu, gpu = config.resources.cpu_per_trial, config.resources.gpu_per_trial
    head = prepared.get("head_node_type")
    types = prepared.get("available_node_types", {})
    workers = {k: v for k, v in types.items() if k != head} or types
    if any(node_type_fits(node.get("resources") or {}, config) for node in workers.values()):
        return None
    declared = ", ".join(f"{k} {v.get('resources')}" for k, v in workers.items())
    return (
        f"{name}: no worker node type can hold one trial of the study (cpu {cpu}, gpu {gpu}); "
        f"node types: {declared}"
    )
