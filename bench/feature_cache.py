"""Feature cache speed-up: one training epoch of resnet18 with and without the cache.

Times, in one run and on one thread, an epoch (one pass over the training set in
mini-batches) of a linear probe (all 5 stages frozen) and of freeze-3 (stem, layer1,
layer2 frozen) on the digits target, once with the frozen prefix run in every step and
once on cached features, and prints the ratios. Building the cache costs about one
uncached forward pass over the data; it is paid once per (architecture, weights,
boundary, split) and shared by every later epoch and trial, so it is printed apart.

    python bench/feature_cache.py [--epochs 3] [--size all] [--threads 1]

Not a test: nothing is asserted (the issue's target is >= 10x for the linear probe).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ on sys.path, not the repo root that `bench.*` is in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import statistics
import time

import torch

from search_spaces.strategies import Phase
from trainables.contract import ALL, TrialConfig, parse_size
from trainables.datasets import load_target
from trainables.feature_store import FeatureStore
from trainables.loops import train_steps
from trainables.phases import PhaseRun
from trainables.registry import get_arch

ARCH = "resnet18"
CASES = (("linear-probe", 5), ("freeze-3", 3))


def trial_config(boundary: int, cached: bool, batch_size: int) -> TrialConfig:
    return TrialConfig(
        arch=ARCH,
        strategy="linear-probe" if boundary == 5 else "freeze-b",
        freeze=boundary,
        lr=0.05,
        backbone_lr_mult=0.5,
        weight_decay=1e-4,
        size=None,
        seed=0,
        steps=1,
        reports=1,
        batch_size=batch_size,
        weights="study:glyphs",
        feature_cache=cached,
    )


def time_case(boundary, cached, target, size, epochs, batch_size) -> tuple[float, float]:
    """(seconds to set up, incl. building the cache; median seconds per epoch)."""
    spec = get_arch(ARCH)
    torch.manual_seed(0)
    model = spec.build(target.num_classes, target.in_channels)
    x, y = target.train_subset(size, 0).tensors()
    val_x, _ = target.val.tensors()
    steps = -(-len(y) // batch_size)
    cfg = trial_config(boundary, cached, batch_size)
    phase = Phase("bench", steps * (epochs + 1), boundary, 0.05, 0.5, 1.0)
    FeatureStore.clear_memory()
    started = time.perf_counter()
    run = PhaseRun(phase, cfg, spec, model, (x, val_x), FeatureStore())
    setup = time.perf_counter() - started
    assert run.status == ("on" if cached else "off: disabled by the study config"), run.status
    generator = torch.Generator().manual_seed(0)
    train_steps(run.net, run.optimizer, run.scheduler, run.x, y, 2, batch_size, generator)  # warm
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        train_steps(run.net, run.optimizer, run.scheduler, run.x, y, steps, batch_size, generator)
        times.append(time.perf_counter() - started)
    return setup, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per case (median)")
    parser.add_argument("--size", default=ALL, help=f"examples per class, or '{ALL}'")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = parse_size(args.size)
    target = load_target("digits", val_per_class=30, test_per_class=50)
    n = len(target.train_subset(size, 0))
    print(
        f"{ARCH} on digits: {n} training images 1x32x32, batch {args.batch_size}, "
        f"{args.threads} thread(s), median of {args.epochs} epochs"
    )
    print(
        f"{'strategy':<13} {'uncached s/epoch':>17} {'cached s/epoch':>15} {'ratio':>8} "
        f"{'cache build s':>14} {'ratio incl. build, 1 epoch':>27}"
    )
    for strategy, boundary in CASES:
        _, plain = time_case(boundary, False, target, size, args.epochs, args.batch_size)
        build, cached = time_case(boundary, True, target, size, args.epochs, args.batch_size)
        print(
            f"{strategy:<13} {plain:>17.3f} {cached:>15.4f} {plain / cached:>7.1f}x "
            f"{build:>14.3f} {plain / (cached + build):>26.2f}x"
        )


if __name__ == "__main__":
    main()
