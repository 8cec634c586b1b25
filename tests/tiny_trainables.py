"""The stand-in trainables of tests/test_concurrency.py, in a module of their own: Ray's
worker processes import it, and it imports nothing heavy (no MLflow, Optuna or the study)."""

from __future__ import annotations

import time
from pathlib import Path

from ray import tune

TRIALS = 16


def at_the_same_moment(config: dict, barrier: str) -> None:
    """Wait until every trial of the batch is running, then report the final result."""
    folder = Path(barrier)
    (folder / tune.get_context().get_trial_id()).touch()
    while len(list(folder.iterdir())) < TRIALS:
        time.sleep(0.02)
    value = 0.5 + config["lr"] / 10
    tune.report(
        {
            "epoch": 1,
            "val_acc": value,
            "best_val_acc": value,
            "train_loss": 1.0,
            "test_acc": value,
            "train_seconds": 0.1,
            "trainable_params": 10,
            "completed": True,
        }
    )


def breaks(config: dict, markers: str) -> None:
    """Three epochs, a checkpoint after each but the last. `mode` fine: runs through;
    flaky: its first attempt dies in epoch 2 (a restart goes on from epoch 1's checkpoint);
    nan: every attempt fails in epoch 2 as a NaN loss does."""
    from trainables.resume import load_checkpoint, save_checkpoint

    state = load_checkpoint(tune.get_checkpoint())
    start = state["epoch"] + 1 if state else 1
    for epoch in range(start, 4):
        if epoch == 2 and config["mode"] == "nan":
            raise FloatingPointError("training loss became nan")
        marker = Path(markers) / tune.get_context().get_trial_id()
        if epoch == 2 and config["mode"] == "flaky" and not marker.exists():
            marker.touch()
            raise RuntimeError("the worker went away")
        value = 0.1 * epoch
        metrics = {"epoch": epoch, "val_acc": value, "best_val_acc": value, "started_at": start}
        if epoch == 3:
            tune.report({**metrics, "test_acc": value, "completed": True})
        else:
            save_checkpoint({"epoch": epoch}, metrics, tune.report)
