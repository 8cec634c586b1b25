"""Hardware efficiency: resnet18's training step in FLOP/s against the machine's fp32
matmul peak, both measured in this run.

The step is the trial's own (trainables.loops.train_steps with the Adam optimizer of the
default study) on random 3x64x64 images, batch 128, float32, 10 classes. Its work is
counted, not timed: FLOPs of one forward pass from the same counter as `study archs`
(study.cli.archs.forward_flops: 2 FLOPs per multiply-accumulate, convolutions and
matrix products only), times 3 for forward + backward (the backward pass computes the
gradients of both the inputs and the weights, each about one forward's work). So

    step FLOPs = 2 x MACs x 3,     efficiency = (step FLOPs / step seconds) / peak

where peak = 2 n^3 / seconds of an n x n fp32 `torch.mm` with the same number of threads:
the best this machine's BLAS reaches, the ceiling a convolution lowered to GEMMs can hope
for. With `--explain`, the same ratio on all threads, channels_last, and a smaller batch,
to say what holds the default back.

One thread by default, as a trial of the study trains (one CPU per trial, the cores
filled with trials side by side); `--explain` adds all of torch's threads.

    python bench/hardware.py [--quick] [--explain] [--threads N]

Prints the ratio last (goal: >= 45%).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ on sys.path, not the repo root that `bench.*` is in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
from dataclasses import dataclass

import torch

from bench.common import bare_trainer, ratio_line, seconds_of
from study.cli.archs import forward_flops
from trainables.registry import get_arch

ARCH, IMAGE, CLASSES, CHANNELS = "resnet18", 64, 10, 3
GOAL = 0.45


@dataclass(frozen=True)
class Setting:
    label: str
    threads: int
    batch: int
    channels_last: bool = False


def matmul_peak(n: int, repeats: int) -> float:
    """fp32 FLOP/s of an n x n x n matrix product (the best of `repeats`: a peak)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / min(seconds_of(lambda: torch.mm(a, b), repeats))


def step_flops(batch: int) -> int:
    forward, _ = forward_flops(get_arch(ARCH), CLASSES, CHANNELS, IMAGE, batch)
    return 3 * forward


def step_rate(setting: Setting, steps: int) -> float:
    """Training FLOP/s of resnet18 under `setting` (its best step of `steps`)."""
    torch.manual_seed(0)
    model = get_arch(ARCH).build(CLASSES, CHANNELS)
    x = torch.randn(setting.batch, CHANNELS, IMAGE, IMAGE)
    y = torch.randint(0, CLASSES, (setting.batch,))
    if setting.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    step = bare_trainer(model, x, y, setting.batch)  # the optimizer once, not per timed step
    # The best step, like the best matmul: on a shared machine the fastest repeat is the
    # one least disturbed by other processes, for both sides of the ratio alike.
    seconds = min(seconds_of(lambda: step(1), steps))
    return step_flops(setting.batch) / seconds


def efficiency(setting: Setting, steps: int, n: int) -> tuple[float, float, float]:
    """(step FLOP/s, matmul peak FLOP/s, ratio), the peak measured on the same threads,
    before and after the steps (the better of the two), so a burst of load from other
    processes during one of them does not decide the ratio."""
    torch.set_num_threads(setting.threads)
    before = matmul_peak(n, repeats=3)
    rate = step_rate(setting, steps)
    peak = max(before, matmul_peak(n, repeats=3))
    return rate, peak, rate / peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 timed step, a smaller matmul")
    parser.add_argument("--explain", action="store_true", help="also the variants (see above)")
    # One thread by default: a trial of the study gets one CPU and trains on one thread
    # (trainables.train.trial_threads), the machine's cores filled with trials side by side.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the best counts)")
    args = parser.parse_args()
    steps, n = (1, 1024) if args.quick else (args.steps, 2048)
    main_setting = Setting("default", args.threads, 128)
    settings = [main_setting]
    if args.explain:
        every = torch.get_num_threads()
        settings += [
            Setting("all threads", every, 128),
            Setting("channels_last", args.threads, 128, channels_last=True),
            Setting("batch 32", args.threads, 32),
        ]
    print(
        f"{ARCH} training step, {CHANNELS}x{IMAGE}x{IMAGE}, float32, "
        f"{step_flops(128) / 1e9:.1f} GFLOP per step of 128 (2 x MACs x 3); "
        f"peak: {n}x{n} torch.mm"
    )
    print(
        f"{'setting':<14} {'threads':>7} {'batch':>5} {'step GFLOP/s':>13} "
        f"{'peak GFLOP/s':>13} {'ratio':>6}"
    )
    ratios = {}
    for setting in settings:
        rate, peak, ratios[setting] = efficiency(setting, steps, n)
        print(
            f"{setting.label:<14} {setting.threads:>7} {setting.batch:>5} {rate / 1e9:>13.1f} "
            f"{peak / 1e9:>13.1f} {ratios[setting]:>6.1%}"
        )
    print(ratio_line("training FLOP/s / matmul peak", ratios[main_setting], GOAL))


if __name__ == "__main__":
    main()
