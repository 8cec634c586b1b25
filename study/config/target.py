"""TargetConfig: one target of a study (the `target:` section, or an entry of `targets:`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from study.config.base import Strict
from trainables.contract import ALL, parse_size

TARGET_NAME = r"^[A-Za-z0-9_-]+$"  # a piece of Optuna study names and MLflow tags


class TargetConfig(Strict):
    name: str | None = Field(
        None,
        pattern=TARGET_NAME,
        description="the target's name in strata, tags and the answer (default: from dataset)",
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
        (`torchvision:CIFAR10` -> `torchvision-CIFAR10`)."""
        return self.name or re.sub(r"[^A-Za-z0-9_-]+", "-", self.dataset).strip("-")

    def trial_sizes(self) -> list[int | None]:
        """Sizes as trials see them: None is the whole pool (ALL)."""
        return [parse_size(size) for size in self.sizes]

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, dataset: str) -> str:
        from trainables.datasets import parse_dataset

        parse_dataset(dataset)  # ValueError naming the allowed datasets
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
