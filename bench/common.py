"""What the benchmarks share: timing, the ratio line every script ends with, and a bare
training loop built from the trial's own pieces (trainables.loops), so "bare" differs from
"in the study" only by the orchestration around it.

Every script prints its ratio last, as `ratio <name>: <value> (goal ...: met|not met)`;
tests/test_bench.py runs each with `--quick` and reads that line. Ratios, never absolute
times, are what the README reports: the machines these run on are shared and noisy.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from trainables.loops import make_optimizer, seeded_generator, train_steps


def seconds_of(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of each of `repeats` calls of `fn`, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def ratio_line(name: str, value: float, goal: float, unit: str = "", at_most: bool = False) -> str:
    """The line every benchmark ends with (tests/test_bench.py looks for it); the goal is
    a floor, or with `at_most` a ceiling (a cost ratio)."""
    met = value <= goal if at_most else value >= goal
    sign = "<=" if at_most else ">="
    verdict = "met" if met else "not met"
    return f"ratio {name}: {value:.3f}{unit} (goal {sign} {goal:g}{unit}: {verdict})"


def bare_trainer(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    lr: float = 1e-3,
    groups: list[dict] | None = None,
    total_steps: int = 10**6,
) -> Callable[[int], float]:
    """`step(n)`: n training steps of `model` with the trial's loop and optimizer (Adam, as
    the default study trains), no Ray, no reports, no checkpoints; returns the mean loss.

    The optimizer (over `groups`, default every trainable parameter at `lr`), its cosine
    schedule (over `total_steps`: long, so the rate stays put while it is timed) and the
    batch-order generator are built once, here, and kept across calls: a timed call runs
    steps, not Adam's set-up or its first step's state allocation."""
    if groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    optimizer, scheduler = make_optimizer(groups, total_steps, "adam")
    generator = seeded_generator(0, x.device)  # where the images are, as a trial's

    def step(n: int) -> float:
        return train_steps(model, optimizer, scheduler, x, y, n, batch_size, generator)

    return step
