"""Freezing and parameter groups: what "freeze the first b stages" does to a model.

Like detectron2's `freeze_at`: the frozen stages' parameters get `requires_grad_(False)`,
and their BatchNorm and Dropout modules stay in eval mode through every `model.train()`
call, so neither their weights nor their running statistics move. The optimizer is only
given trainable parameters, so frozen ones get no weight decay and no momentum either.
"""

from __future__ import annotations

import types

import torch
from torch import nn

from trainables.registry import ArchSpec

STRATEGIES = ("scratch", "finetune", "freeze-b", "linear-probe")


def check_boundary(spec: ArchSpec, boundary: int) -> None:
    if not 0 <= boundary <= spec.num_stages:
        raise ValueError(f"`freeze` must be 0..{spec.num_stages} for {spec.name}, got {boundary}")


def frozen_modules(model: nn.Module, spec: ArchSpec, boundary: int) -> list[nn.Module]:
    check_boundary(spec, boundary)
    return [m for stage in spec.stages[:boundary] for m in spec.stage_modules(model, stage)]


def freeze(model: nn.Module, spec: ArchSpec, boundary: int) -> nn.Module:
    """Freeze the first `boundary` stages of `model` in place and return it."""
    frozen = frozen_modules(model, spec, boundary)
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


def param_groups(
    model: nn.Module,
    spec: ArchSpec,
    lr: float,
    backbone_lr_mult: float,
    weight_decay: float,
) -> list[dict]:
    """Optimizer groups over trainable parameters only.

    The head learns at `lr`, the backbone at `lr * backbone_lr_mult`. Biases and
    normalisation parameters (1-d tensors) get no weight decay.
    """
    head_ids = {id(p) for p in spec.head_module(model).parameters()}
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        key = (id(param) in head_ids, param.ndim > 1)
        groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "lr": lr if is_head else lr * backbone_lr_mult,
            "weight_decay": weight_decay if decays else 0.0,
        }
        for (is_head, decays), params in sorted(groups.items())
    ]
