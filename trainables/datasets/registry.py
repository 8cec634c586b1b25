"""The target-dataset registry: one module per dataset kind in this package.

Like the architecture registry (trainables.registry), `@register(kind)` on a module's
loader fills a dict, a duplicate kind raises, and an unknown name raises a ValueError
listing the allowed ones. The modules are found, not listed: every module on the
package's path is imported before a name is looked up, so adding a dataset is one new
file that calls `register`. Modules that register nothing (the shared core) are imported
harmlessly, and a loader imports its heavy dependencies (sklearn, torchvision) when called.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from trainables.datasets.base import Preprocessing, TargetData

PACKAGE = "trainables.datasets"


def say(line: str) -> None:
    """A line of the study's output while a target loads (stdout, as the study's log)."""
    print(line, flush=True)


@dataclass(frozen=True)
class Request:
    """What a loader is asked for: the name's argument and the study's target settings;
    `log` prints what loading has to say that is not an error (what was skipped)."""

    kind: str
    arg: str  # what follows `kind:` ('' for a name that takes none)
    val_per_class: int
    test_per_class: int
    prep: Preprocessing
    root: str | Path  # where downloadable datasets live
    download: bool
    log: Callable[[str], None] = say

    @property
    def name(self) -> str:
        """The target's name as the study spells it (`digits`, `imagefolder:<path>`): for
        the loader's own error lines; the loaded target is named `public_name(name)`."""
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


Loader = Callable[[Request], TargetData]


@dataclass(frozen=True)
class DatasetSpec:
    kind: str
    load: Loader
    argument: str = ""  # how the argument is shown (`<path>`); '' when the name takes none
    choices: tuple[str, ...] = ()  # the allowed arguments, when they are a fixed set

    @property
    def spelling(self) -> str:
        return f"{self.kind}:{self.argument}" if self.argument else self.kind


_REGISTRY: dict[str, DatasetSpec] = {}
PATH_ARGUMENT = "<path>"  # a dataset read from a folder of this machine (`imagefolder:<path>`)


def register(
    kind: str, *, argument: str = "", choices: tuple[str, ...] = ()
) -> Callable[[Loader], Loader]:
    """Decorator for the loader of target names `kind` (or `kind:<argument>`)."""

    def decorate(load: Loader) -> Loader:
        if kind in _REGISTRY:
            raise ValueError(f"target dataset {kind!r} is already registered")
        _REGISTRY[kind] = DatasetSpec(kind, load, argument, tuple(choices))
        return load

    return decorate


def discover() -> None:
    """Import every module on the package's path; their `@register` calls fill the registry.

    Cheap after the first call (a folder listing; imported modules are not run again),
    so every lookup rescans and a module added to the path is found.
    """
    package = importlib.import_module(PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{PACKAGE}.{module.name}")


def dataset_names() -> list[str]:
    """The allowed target names, as the study spells them (`imagefolder:<path>`)."""
    discover()
    return sorted(spec.spelling for spec in _REGISTRY.values())


def parse_dataset(name: str) -> tuple[str, str]:
    """`digits` -> ('digits', ''); `imagefolder:/x` -> ('imagefolder', '/x'); or ValueError."""
    discover()
    kind, _, arg = name.partition(":")
    spec = _REGISTRY.get(kind)
    if spec is not None and bool(arg) == bool(spec.argument):
        if spec.choices and arg not in spec.choices:
            raise ValueError(f"unknown {kind} dataset {arg!r}; allowed: {', '.join(spec.choices)}")
        return kind, arg
    raise ValueError(f"unknown target dataset {name!r}; allowed: {', '.join(dataset_names())}")


def load_target(
    name: str,
    val_per_class: int,
    test_per_class: int,
    *,
    prep: Preprocessing | None = None,
    root: str | Path = "data",
    download: bool = False,
    log: Callable[[str], None] = say,
) -> TargetData:
    """The target `name`, split into pool, validation and test, as `prep` model inputs;
    `log` gets the lines loading prints (default: stdout)."""
    kind, arg = parse_dataset(name)
    request = Request(
        kind, arg, val_per_class, test_per_class, prep or Preprocessing(), root, download, log
    )
    # Named as the study shows it (tags, dataset inputs, the answer): a folder by its own
    # name; its path is only the request's, to read it.
    return replace(_REGISTRY[kind].load(request), name=public_name(name))


def folder_name(path: str) -> str:
    """The name of the folder `path` names, as the loader reads it (`~` expanded; `.` or
    `..` resolved to the folder they stand for)."""
    folder = Path(path).expanduser()
    return folder.name if folder.name not in ("", "..") else folder.resolve().name


def public_name(name: str) -> str:
    """A target dataset as the study shows it (the trials' `dataset` tag, their dataset
    inputs, the answer, the experiment's description): as spelled, but a folder's
    (`imagefolder:/data/x/pets/` -> `imagefolder:pets`) by its own name, so that no path
    of the machine goes into the MLflow UI. Only a name: what is cached or compared
    (features, digests) is keyed by the data itself, so two folders of one name never
    share an entry."""
    kind, _, arg = name.partition(":")
    discover()
    spec = _REGISTRY.get(kind)
    if not arg or spec is None or spec.argument != PATH_ARGUMENT:
        return name
    return f"{kind}:{folder_name(arg) or arg}"
