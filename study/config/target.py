"""TargetConfig: one target of a study (the `target:` section, or an entry of `targets:`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from study.config.base import Strict
from trainables.contract import ALL, parse_size

TARGET_NAME = r"^[A-Za-z0-9_-]+$"  # a piece of Optuna study names and MLflow tags
IMAGEFOLDER = "imagefolder"  # `imagefolder:<path>`: named after the folder, not its path


class TargetConfig(Strict):
    name: str | None = Field(
        None,
        pattern=TARGET_NAME,
        description="the target's name in strata, tags and the answer (default: the dataset; "
        "an image folder's own name, not its path)",
    )
    dataset: str = Field(
        "digits",
        description="digits | glyphs | imagefolder:<path> | torchvision:<CIFAR10|CIFAR100|MNIST|FashionMNIST>",
    )
    root: str = Field("data", description="where torchvision:<name> datasets live")
    download: bool = Field(False, description="torchvision:<name>: download into root if absent")
    image_size: int = Field(32, ge=8, le=1024, description="input size: shorter side + centre crop")
    channels: Literal["auto", 1, 3] = Field(
        "auto", description="auto: what the weights expect (1 for glyph-pretrained)"
    )
    augment: list[Literal["crop", "flip", "shift"]] = Field(
        default_factory=list,
        description="random crop / flip / shift of training batches (no cache)",
    )
    sizes: list[int | Literal[ALL]] = Field(
        default_factory=lambda: [1, 2, 5, 10, ALL], min_length=1
    )
    seeds: int = Field(5, ge=1, le=100, description="seeds 0..seeds-1 in the confirm phase")
    val_per_class: int = Field(30, ge=1)
    test_per_class: int = Field(50, ge=1)

    @property
    def key(self) -> str:
        """The target's name: `name`, else its dataset spelled with [A-Za-z0-9_-] only
        (`torchvision:CIFAR10` -> `torchvision-CIFAR10`); an image folder's is the folder's
        own name (`imagefolder:/data/x/hymenoptera_data` -> `hymenoptera_data`), so that no
        path of the machine goes into the strata, run names, tags or the answer."""
        return self.name or default_name(self.dataset)

    def trial_sizes(self) -> list[int | None]:
        """Sizes as trials see them: None is the whole pool (ALL)."""
        return [parse_size(size) for size in self.sizes]

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, dataset: str) -> str:
        from trainables.datasets import parse_dataset

        try:
            parse_dataset(dataset)
        except ValueError as error:  # naming the allowed datasets; and the close one
            close = _close_dataset(dataset)
            raise ValueError(f"{error}; did you mean {close}?" if close else str(error)) from None
        return dataset

    @field_validator("augment")
    @classmethod
    def _augment(cls, augment):
        if len(set(augment)) != len(augment):
            raise ValueError(f"augment must not repeat, got {augment}")
        return augment

    @field_validator("sizes", mode="before")
    @classmethod
    def _sizes(cls, sizes):  # before: one line per bad size, not one per union member
        if not isinstance(sizes, list):
            return sizes  # the schema's own "should be a valid list"
        for size in sizes:
            if size != ALL and (type(size) is not int or size < 1):
                raise ValueError(f"sizes must be positive integers or '{ALL}'; {size!r} is not")
        if len(set(map(str, sizes))) != len(sizes):
            raise ValueError(f"sizes must not repeat, got {sizes}")
        return sizes


def default_name(dataset: str) -> str:
    """A target's name when it has no `name:` (see TargetConfig.key)."""
    kind, _, argument = dataset.partition(":")
    if kind == IMAGEFOLDER:
        folder = Path(argument).expanduser()  # as the loader reads it
        dataset = folder.name if folder.name not in ("", "..") else folder.resolve().name
    return re.sub(r"[^A-Za-z0-9_-]+", "-", dataset).strip("-") or kind


def name_clash(targets: Iterable[TargetConfig]) -> str | None:
    """The line refusing two targets of one name (two folders called `pets`: their names
    come from the folders, not the paths), or None when every name is distinct."""
    from trainables.datasets.base import shown

    by_name: dict[str, list[str]] = {}
    for target in targets:
        by_name.setdefault(target.key, []).append(shown(target.dataset))
    for name, datasets in by_name.items():
        if len(datasets) > 1:
            return (
                f"targets must have distinct names: {' and '.join(datasets)} are both named "
                f"{name!r}; give each a `name:`"
            )
    return None


def closest(name: str, names: Iterable[str]) -> str | None:
    """The one of `names` that `name` is a typo of (`resnet19` -> resnet18, `ResNet18` ->
    resnet18), or None when none is close (difflib's ratio under 0.6)."""
    by_lower = {candidate.lower(): candidate for candidate in names}
    found = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return by_lower[found[0]] if found else None


def _close_dataset(name: str) -> str | None:
    """The target dataset `name` is a typo of (`digit` -> digits, `imagefoldr:pets` ->
    imagefolder:pets), or None (also for a wrong argument: its message lists the allowed)."""
    from trainables.datasets import dataset_names

    spellings = {spelling.partition(":")[0]: spelling for spelling in dataset_names()}
    kind, colon, argument = name.partition(":")
    if colon and kind in spellings:
        return None
    close = closest(kind if colon else name, spellings)
    if close is None:
        return None
    return f"{close}:{argument}" if colon and ":" in spellings[close] else spellings[close]
