"""On CUDA a trial trains channels_last under bf16 autocast and resumes from a checkpoint;
skipped where there is no CUDA device."""

from __future__ import annotations

import io
import math

import pytest
import torch

from tests.helpers import source_state, trial_config
from trainables.train import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize(
    "arch,strategy,freeze",
    [("resnet18", "freeze-b", 2), ("lenet5", "finetune", 0), ("lenet5", "lp-ft", 0)],
)
def test_a_trial_trains_on_cuda_and_resumes(digits, arch, strategy, freeze):
    sources = {arch: source_state(arch)}
    cfg = trial_config(arch, strategy, freeze, weight_decay=1e-4)
    states = {}

    def keep(metrics, state):
        buffer = io.BytesIO()
        torch.save(state(), buffer)
        states[metrics["epoch"]] = buffer.getvalue()

    model, metrics = fit(cfg, digits, sources, keep, snapshots=True)
    weight = next(p for p in model.parameters() if p.dim() == 4)
    assert weight.is_cuda and weight.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(metrics["val_acc"]) and 0 <= metrics["test_acc"] <= 1
    saved = torch.load(io.BytesIO(states[1]), map_location="cpu", weights_only=True)
    _, again = fit(cfg, digits, sources, lambda m, s: None, resume=saved, snapshots=True)
    assert again["epoch"] == 2 and 0 <= again["test_acc"] <= 1
