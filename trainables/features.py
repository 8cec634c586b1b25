"""Frozen-prefix feature cache: compute what the frozen stages output once, train the rest.

When the first b stages are frozen (BatchNorm and Dropout in eval mode, no gradients) and
no augmentation changes the inputs, their output for a dataset is the same in every step,
every epoch and every trial that shares (architecture, frozen weights, b, input images).
This module computes it once and trains only the rest of the network on it.

Exactness, for every architecture, without per-family code:

- capture: the features are the output of the last frozen stage's last module, taken with
  a forward hook during the real model's forward (eval mode, `no_grad`), which then stops
  the forward. Root-level hooks (AlexNet/ZFNet/Inception's resize), input transforms
  (GoogLeNet/Inception) and everything else before the cut run exactly as in training.
- the rest: a shallow view of the model (sharing every trainable module and parameter)
  in which the frozen modules are replaced by pass-throughs and the cut module by one
  that returns the cached features. The model's own `forward` runs on a zero dummy input
  of the original shape, so the code *after* the cut (ResNet/VGG's flatten, DenseNet's
  ReLU and pooling, MobileNet's pooling) is the model's own. Code before the cut only
  sees the dummy, whose values are discarded at the cut.
- check: before it is used, the rest's output on a few cached examples is compared with
  the full model's (eval mode). An architecture whose forward feeds something around the
  cut (a skip connection across the boundary, a module called twice) fails the check,
  and the trial trains without the cache and says why (`feature_cache` in its metrics).

Cached features live in memory (process-wide, LRU, so a Ray actor reused for the next
trial keeps them) and on local disk under the study's `stores.features` folder, keyed by
a hash of the architecture, the cut, the frozen modules' state and the input tensor
(which already holds the dataset split and its input transform).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from trainables.feature_store import CACHE_VERSION, FeatureStore, fingerprint, state_fingerprint
from trainables.registry import ArchSpec, get_module

BATCH = 256
CHECK_EXAMPLES = 4
CHECK_TOLERANCE = 1e-4

ON = "on"


class _StopForward(Exception):
    """Raised by the capture hook: nothing after the cut needs to run."""


class _PassThrough(nn.Module):
    """Stands in for a frozen module in the rest view: its input goes straight through."""

    def forward(self, x, *args, **kwargs):
        return x


class _CachedOutput(nn.Module):
    """Stands in for the cut module: returns the cached features of the current batch."""

    def __init__(self) -> None:
        super().__init__()
        self.value: torch.Tensor | None = None

    def forward(self, *args, **kwargs):
        if self.value is None:
            raise RuntimeError("the rest of the network was called without cached features")
        return self.value


class RestModel(nn.Module):
    """The layers after the frozen prefix, fed with cached features.

    Shares every module and parameter it runs with the full model, so training it trains
    the full model; `model.state_dict()` stays the whole network's.
    """

    def __init__(self, view: nn.Module, cached: _CachedOutput, input_shape: tuple) -> None:
        super().__init__()
        self.view = view
        self.cached = cached
        self.input_shape = tuple(input_shape)  # one example's (C, H, W)
        self._dummies: dict[tuple, torch.Tensor] = {}

    def _dummy(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        key = (batch, like.device, like.dtype)
        if key not in self._dummies:
            self._dummies[key] = torch.zeros(
                (batch, *self.input_shape), device=like.device, dtype=like.dtype
            )
        return self._dummies[key]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        self.cached.value = features
        try:
            return self.view(self._dummy(features.shape[0], features))
        finally:
            self.cached.value = None


def frozen_paths(spec: ArchSpec, boundary: int) -> list[str]:
    return [path for stage in spec.stages[:boundary] for path in stage.paths]


def cut_path(spec: ArchSpec, boundary: int) -> str:
    """The module whose output is the frozen prefix's output: stage b's last module."""
    if not 1 <= boundary <= spec.num_stages:
        raise ValueError(f"a cut needs 1..{spec.num_stages} frozen stages, got {boundary}")
    return spec.stages[boundary - 1].paths[-1]


def _shallow(module: nn.Module) -> nn.Module:
    clone = copy.copy(module)
    clone._modules = dict(module._modules)
    clone.__dict__.pop("train", None)  # freeze()'s instance override belongs to the original
    return clone


def rest_view(model: nn.Module, spec: ArchSpec, boundary: int, input_shape: tuple) -> RestModel:
    """A view of `model` that runs everything after the first `boundary` stages."""
    cut = cut_path(spec, boundary)
    view = _shallow(model)
    clones: dict[str, nn.Module] = {"": view}
    cached = _CachedOutput()
    paths = frozen_paths(spec, boundary)
    for path in paths:
        if any(path.startswith(other + ".") for other in paths if other != path):
            continue  # inside another replaced module
        parts = path.split(".")
        parent = view
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            if prefix not in clones:
                clones[prefix] = _shallow(parent._modules[parts[depth - 1]])
                parent._modules[parts[depth - 1]] = clones[prefix]
            parent = clones[prefix]
        parent._modules[parts[-1]] = cached if path == cut else _PassThrough()
    return RestModel(view, cached, input_shape)


def _modes(model: nn.Module) -> dict[nn.Module, bool]:
    return {m: m.training for m in model.modules()}


def _restore(modes: dict[nn.Module, bool]) -> None:
    for module, training in modes.items():
        module.training = training


@torch.no_grad()
def capture(
    model: nn.Module, module: nn.Module, x: torch.Tensor, *, inputs: bool = False
) -> torch.Tensor:
    """What `module` outputs (or, with `inputs`, receives) during `model(x)` in eval mode.

    Runs the real model's forward, in batches, and stops it at `module`.
    """
    caught: list[torch.Tensor] = []

    def on_input(mod, args):
        caught.append(args[0].detach())
        raise _StopForward

    def on_output(mod, args, output):
        caught.append(output.detach())
        raise _StopForward

    handle = (
        module.register_forward_pre_hook(on_input)
        if inputs
        else module.register_forward_hook(on_output)
    )
    modes = _modes(model)
    model.eval()
    chunks = []
    try:
        for start in range(0, len(x), BATCH):
            caught.clear()
            try:
                model(x[start : start + BATCH])
            except _StopForward:
                pass
            if len(caught) != 1:
                raise RuntimeError(f"the cut module ran {len(caught)} times in one forward")
            chunks.append(caught[0])
    finally:
        handle.remove()
        _restore(modes)
    return torch.cat(chunks)


class PrefixCache:
    """Cached outputs of the first `boundary` frozen stages (or of everything before the
    head, for the classical heads) of one model, for any input tensor."""

    def __init__(
        self,
        model: nn.Module,
        spec: ArchSpec,
        boundary: int,
        store: FeatureStore,
        *,
        head_input: bool = False,
    ) -> None:
        self.model = model
        self.spec = spec
        self.boundary = boundary
        self.store = store
        self.head_input = head_input
        if head_input:
            # Everything but the head: the features are the head's input.
            self.module = spec.head_module(model)
            head = spec.head + "."
            self.weights_key = state_fingerprint(model, lambda key: not key.startswith(head))
            self.cut = "head-input"
        else:
            self.module = get_module(model, cut_path(spec, boundary))
            prefixes = tuple(path + "." for path in frozen_paths(spec, boundary))
            self.weights_key = state_fingerprint(model, lambda key: key.startswith(prefixes))
            self.cut = f"stage-{boundary}"

    def key(self, x: torch.Tensor) -> str:
        return fingerprint(
            CACHE_VERSION, torch.__version__, self.spec.name, self.cut, self.weights_key, x
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The cached features of `x` (computed and stored on a miss), on x's device."""
        key = self.key(x)
        found = self.store.get(key)
        if found is None:
            found = capture(self.model, self.module, x, inputs=self.head_input)
            self.store.put(key, found)
        return found.to(x.device)

    def rest(self, input_shape: tuple) -> RestModel:
        if self.head_input:
            raise ValueError("head-input features are fed to the head itself")
        return rest_view(self.model, self.spec, self.boundary, input_shape)


@torch.no_grad()
def check_rest(model: nn.Module, rest: RestModel, x: torch.Tensor, features: torch.Tensor) -> str:
    """'' when the rest on cached features gives the full model's outputs, else why not."""
    modes = _modes(model) | _modes(rest)
    model.eval()
    rest.eval()
    try:
        full = model(x)
        via = rest(features)
    except Exception as error:  # noqa: BLE001 - any failure means: do not use the cache
        return f"the rest does not run on cached features ({type(error).__name__}: {error})"
    finally:
        _restore(modes)
    if full.shape != via.shape:
        return f"the rest gives shape {tuple(via.shape)}, the model {tuple(full.shape)}"
    scale = max(full.abs().max().item(), 1.0)
    error = (full - via).abs().max().item()
    if error > CHECK_TOLERANCE * scale:
        return f"the rest differs from the model's forward by {error:.2e}"
    return ""


def cached_rest(
    model: nn.Module, spec: ArchSpec, boundary: int, store: FeatureStore, x: torch.Tensor
) -> tuple[PrefixCache | None, RestModel | None, str]:
    """(cache, rest, status): status is `on`, or `off: <why>` with cache and rest None."""
    try:
        cache = PrefixCache(model, spec, boundary, store)
        probe = x[:CHECK_EXAMPLES]
        rest = cache.rest(tuple(x.shape[1:]))
        problem = check_rest(model, rest, probe, capture(model, cache.module, probe))
    except Exception as error:  # noqa: BLE001
        problem = f"{type(error).__name__}: {error}"
    if problem:
        return None, None, f"off: {spec.name} cut after stage {boundary}: {problem}"
    return cache, rest, ON
