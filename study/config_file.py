"""Reading a study config: a YAML file or an embedded preset, validated into a StudyConfig.

Bad input becomes a ConfigError whose message is one line naming the problem, where it
is, and the allowed values (`study validate` lists every problem, one line each).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ValidationError

from study.config import ConfigError, StudyConfig

PRESETS_PACKAGE = "study.presets"


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files(PRESETS_PACKAGE).iterdir()
        if p.name.endswith(".yaml")
    )


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys allowed next to the unknown key at `loc` (walks the schema's sections)."""
    model: type[BaseModel] = StudyConfig
    for part in loc[:-1]:
        if isinstance(part, int):  # an entry of a list section (`targets.1.sizes`)
            continue
        field = model.model_fields.get(str(part))
        found = _section_model(getattr(field, "annotation", None))
        if found is None:
            return []
        model = found
    return list(model.model_fields)


def _section_model(annotation) -> type[BaseModel] | None:
    """The model of a section: `TargetConfig`, also inside `| None` and `list[...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for inner in get_args(annotation):
        found = _section_model(inner)
        if found is not None:
            return found
    return None


def _one_line(error: ValidationError, source: str) -> str:
    return _describe(error.errors()[0], source)


def _describe(first: dict, source: str) -> str:
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(first["loc"])
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"{source}: unknown config key `{where}`{hint}"
    if first["type"] == "literal_error":
        return f"{source}: `{where}` {first['msg'].lower()}, got {first['input']!r}"
    message = first["msg"].removeprefix("Value error, ")
    shown = first["input"]
    if isinstance(shown, str):
        from study.stores import redact

        shown = redact(shown)
    return f"{source}: `{where}`: {message} (got {shown!r})"


def parse_config(data: dict, source: str) -> StudyConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a study config must be a YAML mapping, got {type(data).__name__}"
        )
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_one_line(error, source)) from None
    check_names(config, source)
    return config.model_copy(update={"stores": config.stores.from_environment()})


def config_problems(data, source: str) -> list[str]:
    """Every problem of a config (one line each), for `study validate`; [] when valid."""
    if not isinstance(data, dict):
        return [f"{source}: a study config must be a YAML mapping, got {type(data).__name__}"]
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as error:
        return [_describe(item, source) for item in error.errors()]
    try:
        check_names(config, source)
    except ConfigError as error:
        return [str(error)]
    return []


def check_names(config: StudyConfig, source: str) -> None:
    """Names the schema cannot know statically: architectures from the registry."""
    from trainables.registry import get_arch

    for arch in config.search.architectures:
        try:
            get_arch(arch)
        except ValueError as error:
            raise ConfigError(f"{source}: search.architectures: {error}") from None


def load_config(path: str | Path) -> StudyConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return parse_config(data or {}, str(path))


def load_preset(name: str) -> StudyConfig:
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(preset_names())}")
    text = resources.files(PRESETS_PACKAGE).joinpath(f"{name}.yaml").read_text()
    return parse_config(yaml.safe_load(text), f"preset {name}")
