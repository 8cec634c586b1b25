"""Weight sources, and building a model for a target from one of them.

A source is a string:
- `none`: random initialisation (the `scratch` strategy);
- `torchvision:<Enum>.<NAME>`, e.g. `torchvision:ResNet18_Weights.IMAGENET1K_V1`: loaded
  from the torch cache only (`$TORCH_HOME/hub/checkpoints`), never downloaded at run time;
- `checkpoint:<path>`: a local state dict (or a dict with a `state_dict` entry), loaded
  with `weights_only=True`;
- `study:<source>`: a checkpoint of the service's own source-task pretraining, handed to
  the trial by the driver through Ray's object store.

torchvision refuses `num_classes` other than 1000 together with pretrained weights, so
every source follows the same order: build with the source's own head, load, adapt the
first conv to the target's channels, then replace the head.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from trainables.registry import ArchSpec, adapt_first_conv, set_module

KINDS = ("none", "torchvision", "checkpoint", "study")


class WeightsNotCached(FileNotFoundError):
    """torchvision weights requested but absent from the torch cache (no network here)."""


def parse_source(source: str) -> tuple[str, str]:
    kind, _, arg = source.partition(":")
    if kind not in KINDS or (kind != "none" and not arg) or (kind == "none" and arg):
        raise ValueError(
            f"weight source must be one of none, torchvision:<Enum>.<NAME>, checkpoint:<path>, "
            f"study:<source>; got {source!r}"
        )
    return kind, arg


def torchvision_cache_file(name: str) -> Path:
    from torchvision.models import get_weight

    try:
        weights = get_weight(name)
    except (ValueError, KeyError, AttributeError):
        raise ValueError(
            f"unknown torchvision weights {name!r} (expected e.g. ResNet18_Weights.IMAGENET1K_V1)"
        ) from None
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def torchvision_state(name: str) -> dict:
    path = torchvision_cache_file(name)
    if not path.exists():
        raise WeightsNotCached(
            f"torchvision weights {name} are not in the torch cache: {path} is missing. "
            f'On a machine with internet run `python -c "from torchvision.models import get_weight; '
            f"get_weight('{name}').get_state_dict(progress=True)\"` and copy "
            f"{path.name} into {path.parent} (set TORCH_HOME to use another cache)."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return saved.get("state_dict", saved) if isinstance(saved, dict) else saved


def source_state(source: str, study_state: dict | None = None) -> dict | None:
    """The state dict a source names (None for `none`)."""
    kind, arg = parse_source(source)
    if kind == "none":
        return None
    if kind == "torchvision":
        return torchvision_state(arg)
    if kind == "checkpoint":
        return checkpoint_state(arg)
    if study_state is None:
        raise ValueError(f"{source}: no study-pretrained checkpoint was handed to this trial")
    return study_state


def build_for_target(
    spec: ArchSpec,
    source: str,
    num_classes: int,
    in_channels: int,
    study_state: dict | None = None,
) -> nn.Module:
    """A model for the target: pretrained body from `source`, fresh head of `num_classes`."""
    state = source_state(source, study_state)
    if state is None:
        return spec.build(num_classes, in_channels)
    source_classes = state[f"{spec.head}.weight"].shape[0]
    source_channels = state[f"{spec.first_conv}.weight"].shape[1]
    model = spec.build(source_classes, source_channels)
    model.load_state_dict(state)
    if source_channels != in_channels:
        conv = model.get_submodule(spec.first_conv)
        set_module(model, spec.first_conv, adapt_first_conv(conv, in_channels))
    return spec.replace_head(model, num_classes)
