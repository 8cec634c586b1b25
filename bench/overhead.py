"""Orchestration overhead: the same trials inside the study machinery and in a bare loop.

Each case (resnet18 fine-tuned at 32 px, lenet5 fine-tuned) is a few trials of the
same configuration on different seeds, run four ways in this one process:

- bare: a plain PyTorch loop, one trial after the other: the trial's model and weights
  (trainables.train.build_trial_model), Adam steps (trainables.loops.train_steps) and a
  validation accuracy after each of the `reports` chunks, a test accuracy at the end;
  nothing else;
- study: the study's confirm Tuner on a local Ray runtime of 1 CPU (bench/in_study.py):
  `tune_trial` in a reused Ray actor, a report per chunk, checkpoints as the service's
  default `fault_tolerance` has them (every `checkpoint_every` reports once a trial has
  trained `checkpoint_after_s`: none for these trials of seconds), the MLflow trial
  callback writing child runs to a SQLite store;
- the same with a checkpoint with every report (`checkpoint_every: 1`) and with none
  (0), which prices the checkpoints.

Both sides train on one thread (a trial of the study gets 1 CPU); the images are the
same (steps x batch per trial), so images/s ratios are ratios of seconds per trial.

A study trial's seconds are the time between trial completions on the driver, one slot
(a runtime of 1 CPU): the trial and all its orchestration, what each of a phase's hundreds
of trials costs. Each Tuner's start (once per phase: its actor, the trial data from the
object store) is printed apart ("Tuner start": its first trial's wait beyond a bare
trial), and the Ray runtime's and a first untimed Tuner's (imports, once per study) are
left out. Repeated `--repeats` times, interleaved, median printed.

    python bench/overhead.py [--quick] [--repeats 2]

Prints the ratio last (study images/s / bare images/s; goal >= 0.95).
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

from bench.common import ratio_line
from bench.in_study import (
    bench_config,
    ray_and_folder,
    run_in_study,
    source_states,
    study_world,
    trial_configs,
)
from study.config.schema import FaultToleranceConfig
from trainables.contract import TrialConfig
from trainables.datasets import load_target
from trainables.loops import accuracy, make_optimizer, train_steps
from trainables.train import build_trial_model

GOAL = 0.95
DEFAULT = FaultToleranceConfig()
BATCH, REPORTS = 32, 4
# (arch, steps per trial, trials): about as long as the default study's trials.
CASES = {"resnet18": (24, 4), "lenet5": (200, 4)}
QUICK = {"lenet5": (40, 3)}


def bare_trial(cfg: TrialConfig, target, sources) -> None:
    """One trial's training in plain PyTorch: no Ray, no reports, no checkpoints."""
    torch.manual_seed(cfg.seed)
    _, model = build_trial_model(cfg, target, sources)
    x, y = target.train_subset(cfg.size, cfg.seed).tensors()
    val_x, val_y = target.val.tensors()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = make_optimizer([{"params": params, "lr": cfg.lr}], cfg.steps, "adam")
    generator = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.reports):
        train_steps(model, optimizer, scheduler, x, y, cfg.steps // cfg.reports, BATCH, generator)
        accuracy(model, val_x, val_y)
    accuracy(model, *target.test.tensors())  # a trial's last report has its test accuracy


def case_trials(arch: str, steps: int, trials: int) -> list[dict]:
    return [
        dict(arch=arch, strategy="finetune", freeze=0, lr=1e-3, seed=seed, steps=steps,
             reports=REPORTS, batch_size=BATCH, weights="study:glyphs")
        for seed in range(trials)
    ]  # fmt: skip


def measure(folder, case: str, configs, target, sources, repeat: int) -> dict[str, float]:
    """One repeat: seconds per trial bare and in the study (checkpoints as the service's
    default has them, with every report, none), and the study Tuner's start (its first
    trial's wait beyond a bare trial)."""
    started = time.perf_counter()
    for config in configs:
        bare_trial(TrialConfig.from_tune(config), target, sources)
    bare = (time.perf_counter() - started) / len(configs)
    seconds = {"bare": bare}
    ways = [("study", None), ("every report", 1), ("none", 0)]
    for label, every in ways[repeat % 3 :] + ways[: repeat % 3]:  # none always goes first
        name = f"{case}-{repeat}-{label.replace(' ', '-')}"
        world = study_world(folder, name, [case], every, num_cpus=1)
        timing = run_in_study(world, name, target, sources, configs)
        seconds[label] = timing.per_trial()
        if label == "study":
            seconds["tuner start"] = timing.completions[0] - bare
    return seconds


def report(case: str, images: int, s: dict[str, float]) -> float:
    """Prints the case's row; returns its ratio (the service's default checkpoints)."""
    ratio = s["bare"] / s["study"]
    print(
        f"{case:<10} {images:>7} {s['bare']:>7.2f} {s['study']:>8.2f} {ratio:>6.3f} "
        f"{s['bare'] / s['every report']:>13.3f} {s['bare'] / s['none']:>9.3f} "
        f"{s['every report'] / s['none'] - 1:>+10.1%} {s['tuner start']:>8.1f}"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="lenet5 only, short trials, 1 repeat")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cases, repeats = (QUICK, 1) if args.quick else (CASES, args.repeats)
    torch.set_num_threads(1)
    target = load_target("digits", val_per_class=30, test_per_class=50)
    sources = source_states({*cases, "lenet5"})
    print(f"digits, {len(target.train_subset(None, 0))} training images 1x32x32, batch {BATCH}, "
          f"{REPORTS} reports per trial, 1 thread; seconds per trial, median of {repeats}; "
          f"study: checkpoints every {DEFAULT.checkpoint_every} reports once a trial has "
          f"trained {DEFAULT.checkpoint_after_s:g} s")  # fmt: skip
    print(f"{'':<10} {'':>7} {'seconds per trial':>17} {'':>6} {'ratio, checkpoints':>24} {'':>9} "
          f"{'ckpt every':>10}\n{'case':<10} {'images':>7} {'bare':>7} {'study':>8} {'ratio':>6} "
          f"{'every report':>13} {'none':>9} {'report cost':>10} {'Tuner start':>8}")  # fmt: skip
    ratios = []
    with ray_and_folder(num_cpus=1) as folder:
        # The first Tuner of a process pays one-time costs (imports, the first worker
        # process) a study pays once; an untimed one takes them.
        warm = trial_configs(bench_config(folder, 1, 1), target, case_trials("lenet5", 4, 2))
        world = study_world(folder, "warm-up", ["lenet5"], 1, 1)
        run_in_study(world, "warm-up", target, sources, warm)
        for case, (steps, trials) in cases.items():
            configs = trial_configs(
                bench_config(folder, 1, 1), target, case_trials(case, steps, trials)
            )
            runs = [measure(folder, case, configs, target, sources, r) for r in range(repeats)]
            median = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
            ratios.append(report(case, steps * BATCH, median))
    print(ratio_line("study images/s / bare images/s (worst case)", min(ratios), GOAL))


if __name__ == "__main__":
    main()
