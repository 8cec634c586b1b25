"""Reading a study config: a YAML file or an embedded preset, validated into a StudyConfig.

Bad input becomes a ConfigError whose message is one line naming the problem, where it
is, and the allowed values (`study validate` lists every problem, one line each).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ValidationError

from study.config.schema import StudyConfig
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
            problems.append(f"{source}: search.architectures: {error}")
    return problems


def check_names(config: StudyConfig, source: str) -> None:
    problems = name_problems(config.search.architectures, source)
    if problems:
        raise ConfigError(problems[0])


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML whose mappings refuse a repeated key (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor below names it
                continue
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


# YAML 1.1 (PyYAML) reads `1e-6` as a string, which the strict schema would refuse; as in
# YAML 1.2 and JSON, a number with an exponent and no dot is a float.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: str | Path, what: str = "config file"):
    """The data of a YAML file, or ConfigError with one line: a folder, a missing file, a
    binary or non-UTF-8 file, invalid YAML and repeated keys are named as such."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give the path of a YAML file")
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte {raw[error.start]:#04x} at offset "
            f"{error.start}); a {what} is YAML text"
        ) from None
    if "\0" in text:
        raise ConfigError(f"{path}: a binary file (it holds NUL bytes); a {what} is YAML text")
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str):
    """The data of YAML text, read strictly (repeated keys refused, `1e-6` a float), or
    ConfigError with one line naming `source` and the problem."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" on line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{source}: not valid YAML ({problem}{where})") from None


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
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(preset_names())}")
    text = resources.files(PRESETS_PACKAGE).joinpath(f"{name}.yaml").read_text()
    source = f"preset {name}"
    return parse_config(parse_yaml(text, source), source)
