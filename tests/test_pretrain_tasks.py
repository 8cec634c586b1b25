"""Source pretraining on the cluster: one Ray task per architecture, all at once, with a
trial's resources; the driver writes the cache, so a second call trains nothing."""

from __future__ import annotations

import os

import pytest
import torch

from study.config.files import parse_config
from study.stages.pretrain import pretrain_settings, pretrain_sources
from study.tracking import client as tracking
from study.tuning.runtime import local_ray
from trainables.pretrain import checkpoint_path

pytestmark = pytest.mark.ray
ARCHS = ["lenet5", "cnn4"]


def config_in(work, cpus: float = 1):
    return parse_config(
        {
            "name": "pretrain-tasks",
            # Big enough that each task trains for seconds: a worker that starts a little
            # later still overlaps the other one.
            "source": {"images": 2600, "epochs": 1},
            "search": {"architectures": ARCHS, "strategies": ["finetune"]},
            "resources": {"cpu_per_trial": cpus},
            "stores": {
                "mlflow": f"sqlite:///{work / 'mlflow.db'}",
                "artifacts": str(work / "artifacts"),
                "checkpoints": str(work / "pretrained"),
            },
        },
        "test",
    )


def test_architectures_pretrain_concurrently_in_ray_tasks_and_the_cache_is_hit(tmp_path):
    config = config_in(tmp_path)
    client = tracking.client_for(config.stores.mlflow)
    lines: list[str] = []
    with local_ray(num_cpus=2, prefix="pt-"):
        first = pretrain_sources(config, client, log=lines.append)
        experiment = client.get_experiment_by_name(tracking.PRETRAIN_EXPERIMENT)
        runs = client.search_runs([experiment.experiment_id])
        again_lines: list[str] = []
        again = pretrain_sources(config, client, log=again_lines.append)

    assert list(first) == ARCHS
    # Ran in Ray worker processes, two different ones, at the same time.
    assert len(runs) == 2
    pids = {run.data.tags.get("pid") for run in runs}
    assert str(os.getpid()) not in pids and len(pids) == 2 and None not in pids
    (a, b) = sorted((run.info.start_time, run.info.end_time) for run in runs)
    assert b[0] < a[1], f"the two tasks did not overlap: {a}, {b}"
    # Progress as before: each architecture's lines, ending with its source accuracy.
    for arch in ARCHS:
        assert any(line.startswith(f"pretraining {arch} on glyphs") for line in lines)
        assert any(f"source checkpoint for {arch}" in line and "val_acc" in line for line in lines)
    # The driver wrote the cache; the second call reads it and trains nothing.
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "pretrained" / "glyphs").iterdir()) == [
        "cnn4",
        "lenet5",
    ]
    assert all("(cached" in line for line in again_lines) and len(again_lines) == 2
    assert len(client.search_runs([experiment.experiment_id])) == 2
    for arch in ARCHS:
        for key, value in first[arch].items():
            assert torch.equal(value, again[arch][key])


def test_a_checkpoint_is_reused_only_by_studies_that_train_it_with_as_many_threads(tmp_path):
    """On 2 threads the same settings give other weights than on 1 (sums in another order):
    a study with another cpu_per_trial trains its own checkpoint instead of reusing one."""
    one, two = pretrain_settings(config_in(tmp_path)), pretrain_settings(config_in(tmp_path, 2))
    assert (one.threads, two.threads) == (1, 2)
    assert checkpoint_path(tmp_path, "cnn4", one) != checkpoint_path(tmp_path, "cnn4", two)
    assert pretrain_settings(config_in(tmp_path, 0.5)) == one  # a fraction of a CPU: 1 thread
