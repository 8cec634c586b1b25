"""On CUDA a trial trains channels_last under bf16 autocast and resumes from a checkpoint,
and a whole study (Ray, Optuna, MLflow) trains its trials on the GPU; skipped where there
is no CUDA device (tests/test_trial_loop.py checks the same loop's host reads on CPU)."""

from __future__ import annotations

import importlib.util
import io
import math
import os

import pytest
import torch
import yaml
from torch import nn

from tests.conftest import ROOT, cli_env
from tests.helpers import source_state, trial_config
from trainables.train import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def convolutions_with_several_inputs(model: nn.Module) -> list[torch.Tensor]:
    """The weights where a memory layout shows: with one input channel (digits' first
    convolution) channels_last and contiguous are the same tensor."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1]


@pytest.mark.parametrize(
    "arch,strategy,freeze",
    [("resnet18", "freeze-b", 2), ("lenet5", "finetune", 0), ("lenet5", "lp-ft", 0)],
)
def test_a_trial_trains_on_cuda_and_resumes(digits, arch, strategy, freeze):
    sources = {arch: source_state(arch)}
    cfg = trial_config(arch, strategy, freeze, weight_decay=1e-4, augment=("shift",))
    states = {}

    def keep(metrics, state):
        buffer = io.BytesIO()
        torch.save(state(), buffer)
        states[metrics["epoch"]] = buffer.getvalue()

    model, metrics = fit(cfg, digits, sources, keep, snapshots=True)
    weights = convolutions_with_several_inputs(model)
    assert weights and all(w.is_cuda for w in weights)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not all(w.is_contiguous() for w in weights)  # the layout really changed
    assert math.isfinite(metrics["val_acc"]) and 0 <= metrics["test_acc"] <= 1
    saved = torch.load(io.BytesIO(states[1]), map_location="cpu", weights_only=True)
    _, again = fit(cfg, digits, sources, lambda m, s: None, resume=saved, snapshots=True)
    assert again["epoch"] == 2 and 0 <= again["test_acc"] <= 1


@pytest.mark.ray
@pytest.mark.skipif(
    not all(importlib.util.find_spec(p) for p in ("ray", "optuna", "mlflow")),
    reason="needs Ray, Optuna and MLflow",
)
def test_a_study_trains_every_trial_on_the_gpu(tmp_path, monkeypatch):
    import study
    from study.tracking import names as t
    from study.tracking.client import client_for

    config = yaml.safe_load((ROOT / "study/config/presets/smoke.yaml").read_text())
    config["resources"]["gpu_per_trial"] = 0.25  # four trials share the GPU
    monkeypatch.chdir(tmp_path)
    for name in set(os.environ) - set(cli_env()):
        monkeypatch.delenv(name)
    answer = study.run(config)

    assert len(answer) == 1 and 0 <= answer.best().test_acc <= 1
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    trials = [r for r in runs if t.TAG_TRIAL_ID in r.data.tags]
    assert trials and all(r.data.tags[t.TAG_DEVICE].startswith("cuda") for r in trials)
