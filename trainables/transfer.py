"""Freezing and parameter groups: what "freeze the first b stages" does to a model.

Like detectron2's `freeze_at`: the frozen stages' parameters get `requires_grad_(False)`,
and their BatchNorm and Dropout modules stay in eval mode through every `model.train()`
call, so neither their weights nor their running statistics move. The optimizer is only
given trainable parameters, so frozen ones get no weight decay and no momentum either
(an optimizer keeps no state at all for a parameter it was never given).
"""

from __future__ import annotations

import types

import torch
from torch import nn

from trainables.registry import ArchSpec


def check_boundary(spec: ArchSpec, boundary: int) -> None:
    if not 0 <= boundary <= spec.num_stages:
        raise ValueError(f"`freeze` must be 0..{spec.num_stages} for {spec.name}, got {boundary}")


def frozen_modules(model: nn.Module, spec: ArchSpec, boundary: int) -> list[nn.Module]:
    check_boundary(spec, boundary)
    return [m for stage in spec.stages[:boundary] for m in spec.stage_modules(model, stage)]


def unfreeze(model: nn.Module) -> nn.Module:
    """Undo `freeze`: every parameter trainable, `train()` the class's own again."""
    model.__dict__.pop("train", None)
    model.requires_grad_(True)
    return model


def freeze(model: nn.Module, spec: ArchSpec, boundary: int) -> nn.Module:
    """Freeze exactly the first `boundary` stages of `model` in place and return it.

    Calling it again moves the boundary (lp-ft: everything frozen, then nothing).
    """
    frozen = frozen_modules(model, spec, boundary)
    unfreeze(model)
    for module in frozen:
        module.requires_grad_(False)
    if frozen:
        # Shadow `train` on this instance: every later model.train() call (ours, Ray's,
        # a user's) puts the frozen stages straight back into eval mode.
        base_train = type(model).train

        def train(self: nn.Module, mode: bool = True) -> nn.Module:
            base_train(self, mode)
            for module in frozen:
                module.eval()
            return self

        model.train = types.MethodType(train, model)
    model.train()
    return model


def stage_index_of_params(model: nn.Module, spec: ArchSpec) -> dict[int, int]:
    """id(parameter) -> index of the stage that holds it."""
    index = {}
    for i, stage in enumerate(spec.stages):
        for module in spec.stage_modules(model, stage):
            for param in module.parameters():
                index.setdefault(id(param), i)
    return index


def param_groups(
    model: nn.Module,
    spec: ArchSpec,
    lr: float,
    backbone_lr_mult: float,
    weight_decay: float,
    layer_decay: float = 1.0,
) -> list[dict]:
    """Optimizer groups over trainable parameters only.

    The head learns at `lr`, the backbone at `lr * backbone_lr_mult`, and with
    `layer_decay` < 1 stage s of n at `lr * backbone_lr_mult * layer_decay ** (n - 1 - s)`
    (layer-wise decay toward the input, as in BEiT/ELECTRA; 1.0 is no decay). Biases and
    normalisation parameters (1-d tensors) get no weight decay.
    """
    if not 0 < layer_decay <= 1:
        raise ValueError(f"`layer_decay` must be in (0, 1], got {layer_decay}")
    head_ids = {id(p) for p in spec.head_module(model).parameters()}
    stage_of = stage_index_of_params(model, spec) if layer_decay != 1.0 else {}
    last = spec.num_stages - 1
    groups: dict[tuple[bool, int, bool], list[torch.nn.Parameter]] = {}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        is_head = id(param) in head_ids
        # Parameters outside every stage (and all of them without decay) count as the last stage.
        depth = 0 if is_head else last - stage_of.get(id(param), last)
        key = (is_head, -depth, param.ndim > 1)
        groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "lr": lr if is_head else lr * backbone_lr_mult * layer_decay ** (-neg_depth),
            "weight_decay": weight_decay if decays else 0.0,
        }
        for (is_head, neg_depth, decays), params in sorted(groups.items())
    ]
