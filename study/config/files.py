"""Reading a study config: a YAML file or an embedded preset, validated into a StudyConfig.

Bad input becomes a ConfigError whose message is one line naming the problem, where it
is, and the allowed values (`study validate` lists every problem, one line each).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from study.config.schema import StudyConfig
from study.config.strict_yaml import parse_yaml, read_yaml  # read here, and by the CLI
from study.config.target import closest
from study.errors import ConfigError

PRESETS_PACKAGE = "study.config.presets"
ARCH_LOCATIONS = {("search",), ("search", "architectures")}


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


def _literal_values(loc: tuple) -> list:
    """The values the field at `loc` allows, when it is a Literal (`search.strategies.0`)."""
    model: type[BaseModel] | None = StudyConfig
    annotation = None
    for part in loc:
        if isinstance(part, int):  # an entry of a list
            continue
        field = model.model_fields.get(str(part)) if model is not None else None
        if field is None:
            return []
        annotation = field.annotation
        model = _section_model(annotation)
    return _literals(annotation)


def _literals(annotation) -> list:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [value for inner in get_args(annotation) for value in _literals(inner)]


def _one_line(error: ValidationError, source: str) -> str:
    return _describe(error.errors()[0], source)


def _describe(first: dict, source: str) -> str:
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(first["loc"])
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"{source}: unknown config key `{where}`{hint}"
    if first["type"] == "literal_error":
        allowed = [v for v in _literal_values(first["loc"]) if isinstance(v, str)]
        close = closest(first["input"], allowed) if isinstance(first["input"], str) else None
        hint = f"; did you mean {close!r}?" if close else ""
        return f"{source}: `{where}` {first['msg'].lower()}, got {first['input']!r}{hint}"
    message = first["msg"].removeprefix("Value error, ")
    shown = first["input"]
    if isinstance(shown, str):
        from study.stores.urls import redact

        shown = redact(shown)
    shown = repr(shown)
    if len(shown) > 60:  # a 300-character name is not repeated whole
        shown = f"{shown[:40]}... ({len(shown)} characters)"
    return f"{source}: `{where}`: {message} (got {shown})"


def parse_config(data, source: str) -> StudyConfig:
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


def check_config(data, source: str) -> tuple[list[str], StudyConfig | None]:
    """Every problem of a config (one line each) for `study validate`, and the config with
    the sections that have problems left at their defaults, for the checks of the data and
    the stores; None when the target or the source section is broken (nothing to load)."""
    if not isinstance(data, dict):
        return [f"{source}: a study config must be a YAML mapping, got {type(data).__name__}"], None
    try:
        StudyConfig.model_validate(data)
        errors = []
    except ValidationError as error:
        errors = error.errors()
    problems = [_describe(item, source) for item in errors]
    search = data.get("search")
    archs = search.get("architectures") if isinstance(search, dict) else None
    if isinstance(archs, list):  # names are checked even when another key is wrong
        names = name_problems([a for a in archs if isinstance(a, str)], source)
        problems += names
        errors += [{"loc": ("search", "architectures")}] if names else []
    usable = _without(data, [item["loc"] for item in errors])
    archs_wrong = any(tuple(e["loc"][:2]) in ARCH_LOCATIONS for e in errors)
    if usable is None or (usable.source.weights == "torchvision" and archs_wrong):
        return problems, None  # its weight checks need the study's own architectures
    return problems, usable.model_copy(update={"stores": usable.stores.from_environment()})


def _without(data: dict, locations: list[tuple]) -> StudyConfig | None:
    """The config with every key that has a problem left at its default (so the data and
    the stores can still be checked), or None when that is not a valid config either."""
    pruned = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for loc in locations:
        section = pruned.get(loc[0]) if loc else None
        if len(loc) > 1 and isinstance(section, dict):
            section.pop(loc[1], None)
        elif loc:
            pruned.pop(loc[0], None)
    try:
        return StudyConfig.model_validate(pruned)
    except ValidationError:  # e.g. a range whose ends only fail together
        return None


def name_problems(architectures: list[str], source: str) -> list[str]:
    """Names the schema cannot know statically (architectures from the registry): one
    line per unknown name."""
    from trainables.registry import get_arch

    problems = []
    for arch in architectures:
        try:
            get_arch(arch)
        except ValueError as error:
            problems.append(f"{source}: search.architectures: {_arch_problem(arch, error)}")
    return problems


def _arch_problem(arch: str, error: ValueError) -> str:
    """The registry's message, with the close name instead of all of them (26) when there
    is one; an optional architecture's missing extra without the list."""
    from trainables.registry import list_archs

    message = str(error)
    if not message.startswith("unknown architecture"):
        return message.split("; registered:")[0]
    close = closest(arch, list_archs())
    if close is None:
        return message
    return f"unknown architecture {arch!r}; did you mean {close}? (`study archs` lists all)"


def check_names(config: StudyConfig, source: str) -> None:
    problems = name_problems(config.search.architectures, source)
    if problems:
        raise ConfigError(problems[0])


def read_config_data(path: str | Path) -> dict:
    """The data of a study config file; an empty file is refused (it would silently run
    the whole default study)."""
    data = read_yaml(path)
    if data is None:
        raise ConfigError(
            f"{path}: the config file is empty; write at least `name: <study>` "
            f"(every key and its default: study/config/presets/default.yaml)"
        )
    return data


def load_config(path: str | Path) -> StudyConfig:
    return parse_config(read_config_data(path), str(path))


def load_preset(name: str) -> StudyConfig:
    if name not in preset_names():
        close = closest(name, preset_names())
        hint = f"did you mean {close}? " if close else ""
        raise ConfigError(f"unknown preset {name!r}; {hint}allowed: {', '.join(preset_names())}")
    text = resources.files(PRESETS_PACKAGE).joinpath(f"{name}.yaml").read_text()
    source = f"preset {name}"
    return parse_config(parse_yaml(text, source), source)
