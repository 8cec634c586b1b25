"""Architecture registry: named CNNs split into ordered, named stages.

A spec is data. Nothing is built or downloaded at import; `ArchSpec.build` makes the
model. Like torchvision's model registry, `@register("name")` fills a dict, a duplicate
name raises, and an unknown name raises a ValueError listing the registered names.

Adding an architecture is adding one module to `trainables/archs/`: every module there
whose name does not start with `_` is imported (so registered) on first use of the
registry, and `ArchSpec.build` does the per-model wiring (first conv for 1 channel,
resizing small inputs) from the spec's own fields, so a family file only builds the net.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# `builder(num_classes, in_channels, **options)` -> the plain network (see ArchSpec.build).
Builder = Callable[..., nn.Module]

# Input sizes below this are not considered: the service's smallest images are 32x32
# (LeNet's inputs, CIFAR). `min_input_size` is the smallest working size at or above it.
SMALLEST_IMAGE = 32

# The package whose modules are the architecture families.
FAMILIES = "trainables.archs"


@dataclass(frozen=True)
class Stage:
    """One named group of modules; `paths` are dotted module paths in the built model."""

    name: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class ArchSpec:
    """Everything the service needs to know about one architecture.

    `builder(num_classes, in_channels, **options)` returns a freshly initialised model
    whose classifier is the module at `head`; it may ignore `in_channels` and build for RGB,
    as torchvision's builders do (`build` then adapts the conv at `first_conv`). `stages`
    run from input to output, head excluded, so "freeze the first b stages" means the same
    thing for every architecture. `heavy` entries are slow to build and run on a CPU: their
    contract tests carry the `slow` marker.
    """

    name: str
    family: str
    builder: Builder
    stages: tuple[Stage, ...]
    head: str
    default_input_size: int
    min_input_size: int
    first_conv: str
    torchvision_weights: tuple[str, ...] = field(default=())
    heavy: bool = False

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def build(self, num_classes: int, in_channels: int = 3, **options) -> nn.Module:
        """The builder's network, wired for `in_channels` and small inputs.

        A network built for RGB gets its first conv replaced by a copy for `in_channels`
        (filters summed, see adapt_first_conv), after it is built, so its initialisation
        is the RGB model's whatever the channel count. An entry whose smallest working
        input is above SMALLEST_IMAGE resizes smaller inputs up to it (a forward pre-hook:
        module tree and state-dict keys unchanged). `options` go to the builder
        (GoogLeNet's and Inception v3's `aux_logits`).
        """
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be >= 1, got {num_classes}")
        if in_channels not in (1, 3):
            raise ValueError(f"`in_channels` must be 1 or 3, got {in_channels}")
        model = self.builder(num_classes, in_channels, **options)
        conv = get_module(model, self.first_conv)
        adapted = adapt_first_conv(conv, in_channels)
        if adapted is not conv:
            set_module(model, self.first_conv, adapted)
        if self.min_input_size > SMALLEST_IMAGE:
            resize_small_inputs(model, self.min_input_size)
        return model

    def stage_modules(self, model: nn.Module, stage: Stage) -> list[nn.Module]:
        return [get_module(model, path) for path in stage.paths]

    def head_module(self, model: nn.Module) -> nn.Module:
        return get_module(model, self.head)

    def replace_head(self, model: nn.Module, num_classes: int) -> nn.Module:
        """Swap the classifier for a fresh one with `num_classes` outputs (load first, then this)."""
        old = self.head_module(model)
        if isinstance(old, nn.Linear):
            new: nn.Module = nn.Linear(old.in_features, num_classes)
        elif isinstance(old, nn.Conv2d) and old.kernel_size == (1, 1):
            # timm's ResNetV2 classifies with a 1x1 conv on the pooled features.
            new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1)
        else:
            raise TypeError(
                f"{self.name}: head {self.head!r} is {type(old).__name__}, expected Linear or 1x1 Conv2d"
            )
        set_module(model, self.head, new)
        return model


_REGISTRY: dict[str, ArchSpec] = {}
# Names provided by an optional extra (e.g. timm's models): absent unless it is installed.
_OPTIONAL: dict[str, str] = {}
# Optional names that are heavy, so the heavy set does not depend on what is installed.
_OPTIONAL_HEAVY: set[str] = set()
# Packages whose family modules have all been imported.
_DISCOVERED: set[str] = set()


def register(name: str) -> Callable[[Callable[[], ArchSpec]], Callable[[], ArchSpec]]:
    """Decorator for a function that returns the spec named `name`."""

    def decorate(make_spec: Callable[[], ArchSpec]) -> Callable[[], ArchSpec]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is already registered")
        spec = make_spec()
        if spec.name != name:
            raise ValueError(f"spec name {spec.name!r} does not match registered name {name!r}")
        _REGISTRY[name] = spec
        return make_spec

    return decorate


def register_optional(name: str, extra: str, heavy: bool = False) -> None:
    """Declare that `name` comes with the optional `extra`, so asking for it says what to install."""
    _OPTIONAL.setdefault(name, extra)
    if heavy:
        _OPTIONAL_HEAVY.add(name)


def discover(package: str = FAMILIES) -> None:
    """Import every module of `package` whose name does not start with `_`.

    Importing a family module runs its @register decorators, so a new family file is
    registered by being there; `_`-prefixed modules hold shared helpers. Each package is
    walked once per process (the registry is read on every trial's build).
    """
    if package in _DISCOVERED:
        return
    modules = importlib.import_module(package).__path__
    for info in pkgutil.iter_modules(modules):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
    _DISCOVERED.add(package)


def list_archs() -> list[str]:
    discover()
    return sorted(_REGISTRY)


def unavailable_archs() -> dict[str, str]:
    """Names of optional entries whose extra is not installed, each with that extra."""
    discover()
    return {name: extra for name, extra in sorted(_OPTIONAL.items()) if name not in _REGISTRY}


def heavy_archs() -> frozenset[str]:
    """Heavy entries, registered or optional (the same set whether or not an extra is installed)."""
    discover()
    return frozenset({name for name, spec in _REGISTRY.items() if spec.heavy} | _OPTIONAL_HEAVY)


def get_arch(name: str) -> ArchSpec:
    discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        registered = ", ".join(sorted(_REGISTRY))
        extra = _OPTIONAL.get(name)
        if extra is not None:
            raise ValueError(
                f"architecture {name!r} needs the optional `{extra}` extra, which is not "
                f"installed (pip install 'transfer-study[{extra}]'); registered: {registered}"
            ) from None
        raise ValueError(f"unknown architecture {name!r}; registered: {registered}") from None


def get_module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ValueError(f"module path {path!r} does not exist in {type(model).__name__}") from None


def set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    if isinstance(parent, nn.Sequential | nn.ModuleList) and child.isdigit():
        parent[int(child)] = module
    else:
        setattr(parent, child, module)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of `conv` taking `in_channels` inputs; RGB filters are summed for 1 channel.

    Summing keeps the response to a grey image equal to the RGB conv's response to the
    same grey value in all three channels, so pretrained features still fire.
    """
    if conv.in_channels == in_channels:
        return conv
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        if in_channels == 1:
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


class ResizeUp:
    """Forward pre-hook: inputs whose smaller side is under `size` are resized up to it.

    For architectures with a smallest working input (AlexNet, ZFNet, Inception v3), small
    images (32x32) still work without changing the architecture. A hook has no parameters
    and is not in the module tree, so state dicts (torchvision's included) load unchanged.
    Bilinear, aspect ratio kept. A class rather than a closure so models still pickle.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        x = args[0]
        height, width = x.shape[-2:]
        short = min(height, width)
        if short >= self.size:
            return None
        scale = self.size / short
        size = (max(self.size, round(height * scale)), max(self.size, round(width * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return (x, *args[1:])


def resize_small_inputs(model: nn.Module, size: int) -> nn.Module:
    """Make `model` resize inputs smaller than `size` up to `size` (see ResizeUp)."""
    model.register_forward_pre_hook(ResizeUp(size))
    return model


class DropStateKeys:
    """load_state_dict pre-hook dropping keys of modules this build leaves out.

    torchvision's GoogLeNet and Inception v3 checkpoints carry their auxiliary heads; the
    registry builds them without (aux heads off unless asked for), so strict loading of
    `torchvision:` weights must skip those keys rather than fail.
    """

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes

    def __call__(self, module, state_dict, prefix, *args) -> None:
        for key in list(state_dict):
            if key.startswith(prefix) and key[len(prefix) :].startswith(self.prefixes):
                del state_dict[key]
