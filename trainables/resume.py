"""A trial's training state after an epoch, and how a restarted trial picks it up.

`fit` hands a snapshot of its state to the reporter after every epoch; `tune_trial`
writes it as a `ray.tune.Checkpoint` every `checkpoint_every` epochs. When Ray restarts a
failed trial, or the study resumes after its driver was killed, the trial reads the
latest checkpoint back and `fit` goes on after that epoch: model, optimizer and learning
rate schedule, the mini-batch generator and torch's RNG, the best weights so far.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch

STATE_FILE = "state.pt"


def snapshot(
    epoch: int, model, run, best_val: float, best_state, best_epoch: int, generator, seconds: float
) -> dict:
    """The state after `epoch` (`run`: the phase being trained, with its optimizer)."""
    return {
        "epoch": epoch,
        "model": model.state_dict(),
        # The best weights are the current ones when this epoch was the best: not stored twice.
        "best_state": None if best_epoch == epoch else best_state,
        "best_val": best_val,
        "best_epoch": best_epoch,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "train_seconds": seconds,
    }


def best_of(state: dict, model) -> dict:
    """The best weights of a snapshot, after `model` was loaded from it."""
    if state["best_state"] is not None:
        return state["best_state"]
    return copy.deepcopy(model.state_dict())


def restore_run(state: dict, run, generator) -> None:
    """Put the optimizer, schedule and random generators back where the snapshot left them."""
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])


def save_checkpoint(state: dict, metrics: dict, report) -> None:
    """`report(metrics, checkpoint=...)` with the state written to a Ray checkpoint."""
    from ray.tune import Checkpoint

    with tempfile.TemporaryDirectory(prefix="trial-state-") as folder:
        torch.save(state, Path(folder) / STATE_FILE)
        report(metrics, checkpoint=Checkpoint.from_directory(folder))


def load_checkpoint(checkpoint) -> dict | None:
    """The state in a Ray checkpoint (None when there is none)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = Path(folder) / STATE_FILE
        if not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)
