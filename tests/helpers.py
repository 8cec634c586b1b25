"""Building blocks the trainable-level tests share: a stand-in source checkpoint, a trial
config with small defaults, and a snapshot of stages' parameters and buffers."""

from __future__ import annotations

import torch

from trainables.contract import TrialConfig
from trainables.registry import get_arch, heavy_archs

# Architectures whose contract tests are `slow` (still in `make test`; every family keeps a
# lighter member in the default run): the entries marked `heavy` in their family files.
HEAVY_ARCHS = heavy_archs()


def source_state(arch: str) -> dict:
    """A stand-in for a pretrained source checkpoint (52 source classes, 1 channel)."""
    torch.manual_seed(1)
    return get_arch(arch).build(num_classes=52, in_channels=1).state_dict()


def trial_config(arch: str, strategy: str, freeze: int, **overrides) -> TrialConfig:
    values = dict(
        arch=arch,
        strategy=strategy,
        freeze=freeze,
        lr=0.05,
        backbone_lr_mult=0.5,
        weight_decay=1e-3,
        size=5,
        seed=0,
        steps=8,
        reports=2,
        batch_size=8,
        weights="study:glyphs",
    )
    return TrialConfig(**(values | overrides))


def stage_state(model, spec, stages) -> dict[str, torch.Tensor]:
    """Parameters and buffers (BatchNorm running statistics included) of `stages`."""
    return {
        f"{stage.name}.{path}.{key}": value.clone()
        for stage in stages
        for path in stage.paths
        for key, value in model.get_submodule(path).state_dict().items()
    }


def best_freeze_json(work) -> str:
    """`study best-freeze --format json` of the store in folder `work`, as a user runs it."""
    import subprocess
    import sys

    from tests.conftest import ROOT, cli_env

    command = [sys.executable, str(ROOT / "study" / "run.py"), "best-freeze", "--format", "json"]
    done = subprocess.run(command, cwd=work, env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
