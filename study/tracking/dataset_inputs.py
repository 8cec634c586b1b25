"""Each trial's training subset as an MLflow dataset input (the runs table's Dataset column).

A trial trains on the subset (size, seed) of the target's training pool; its child run
records that subset as a dataset input with context `training`: a name that says which
subset, a digest of its images and labels (equal digests: the very same examples), where
it came from, and a profile with the examples per class and the seed. The subsets are
described once on the driver, before any trial starts (the driver has the target loaded;
trials never open the store).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from trainables.contract import ALL, config_size

SOURCE_TYPE = "study"  # not a file or table MLflow could open: a subset of the loaded target


def subset_key(target: str, size, seed) -> str:
    """How the trial logger looks a subset up: a trial config's target name, size (as the
    config writes it: an int or ALL, `trainables.contract.config_size`) and seed."""
    return f"{target}/{size}/{seed}"


def _digest(x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()[:8]  # MLflow's own datasets show 8 hex digits


def describe_subset(target, size: int | None, seed: int) -> dict[str, str]:
    """The fields of an MLflow Dataset for the training subset (size, seed) of `target`
    (a TargetData); size None is the whole pool (ALL)."""
    subset = target.train_subset(size, seed)
    counts = np.bincount(subset.y, minlength=target.num_classes)
    shown = config_size(size)
    profile = {
        "examples_per_class": shown
        if size is not None
        else f"{ALL} ({counts.min()}..{counts.max()})",
        "seed": seed,
        "classes": target.num_classes,
        "examples": len(subset),
        "image_shape": list(subset.x.shape[1:]),
    }
    source = {"dataset": target.name, "split": "training pool", "size": shown, "seed": seed}
    return {
        "name": f"{target.name}-size{shown}-seed{seed}",
        "digest": _digest(subset.x, subset.y),
        "source_type": SOURCE_TYPE,
        "source": json.dumps(source),
        "profile": json.dumps(profile),
    }


def training_subsets(config, targets: dict) -> dict[str, dict[str, str]]:
    """Every subset a study (a StudyConfig) trains on: each (target, size) with seeds
    0..seeds-1 (the search phase uses seed 0, the confirm phase every seed); `targets`:
    the loaded targets by name."""
    return {
        subset_key(settings.key, config_size(size), seed): describe_subset(
            targets[settings.key], size, seed
        )
        for settings, size in config.target_sizes()
        for seed in range(settings.seeds)
    }


def training_input(fields: dict[str, str]) -> DatasetInput:
    """The dataset input of a child run, from `describe_subset`'s fields."""
    return DatasetInput(Dataset(**fields), tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")])
