"""The calibration behind `study plan`: how fast this machine trains each architecture.

Per (architecture, image size, channels, classes, batch size, optimizer) a few optimizer
steps of the network (built as a trial builds it, random weights and random inputs: the
cost is the same) are timed in-process on the trial's torch threads
(`resources.cpu_per_trial`), at two batch sizes (a step costs a fixed part plus a part
per image), and a forward pass in eval mode (validation, test, the classical heads' and
lp-ft's feature extraction). The glyph source's rendering is timed too (pretraining).

Cheapest first, until CALIBRATION_BUDGET_S is spent: an architecture past it (the big
torchvision networks of the gpu-cluster preset on a laptop) is estimated from its FLOPs
at the speed measured per FLOP on the ones timed, and the plan says so.

The measurements are cached in `<stores.checkpoints>/plan-calibration.json`, keyed by
the machine (host name, torch version, threads) and the shape, so a second `study plan`
(and the study run's `planned_*` params) reuses them. Nothing else is written.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from trainables.loops import accuracy, make_optimizer, train_steps
from trainables.registry import get_arch
from trainables.transfer import param_groups

CALIBRATION_FILE = "plan-calibration.json"
CALIBRATION_VERSION = 1
CALIBRATION_BUDGET_S = 15.0  # timed shapes, cheapest first; the rest from FLOPs
SMALL_BATCH = 4
TIMED_STEPS = 4
FORWARD_IMAGES = 128
MAX_STEP_FLOPS = 20e9
SLOW_STEP_S = 0.5  # a warm-up step slower than this is the measurement itself
RENDER_IMAGES = 104  # glyphs rendered to time the source's rendering (2 per letter)


@dataclass(frozen=True)
class Shape:
    """One training setting to calibrate: a network at an input and a batch size."""

    arch: str
    image_size: int
    channels: int
    classes: int
    batch: int
    optimizer: str

    def key(self, threads: int) -> str:
        machine = f"{platform.node()}|torch {torch.__version__}|threads {threads}"
        fields = (self.arch, self.image_size, self.channels, self.classes, self.batch)
        return (
            f"v{CALIBRATION_VERSION}|{machine}|" + "|".join(map(str, fields)) + f"|{self.optimizer}"
        )


@dataclass(frozen=True)
class Speed:
    """Seconds: an optimizer step is `step_s + batch * image_s`; a forward pass in eval
    mode `forward_s` per image. `measured`: False when estimated from FLOPs."""

    step_s: float
    image_s: float
    forward_s: float
    measured: bool = True

    def step(self, batch: int) -> float:
        return self.step_s + batch * self.image_s


def flop_profile(shape: Shape) -> tuple[float, tuple[float, ...]]:
    """FLOPs of one image's forward pass (convolutions and matrix products, 2 per
    multiply-accumulate), counted on the meta device (no memory, milliseconds), and for
    each freeze boundary b = 0..B the share of them in the first b stages."""
    spec = get_arch(shape.arch)
    with torch.device("meta"):
        model = spec.build(shape.classes, shape.channels).eval()
        x = torch.empty(1, shape.channels, shape.image_size, shape.image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    total = float(counter.get_total_flops())
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(model).__name__
    shares, frozen = [0.0], 0.0
    for stage in spec.stages:
        frozen += sum(counts.get(f"{root}.{path}", 0) for path in stage.paths)
        shares.append(min(1.0, frozen / total) if total else 0.0)
    return total, tuple(shares)


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure_speed(shape: Shape, threads: int) -> Speed:
    """Time a few optimizer steps of `shape` at two batch sizes and a forward pass."""
    spec = get_arch(shape.arch)
    torch.manual_seed(0)
    model = spec.build(shape.classes, shape.channels)
    groups = param_groups(model, spec, 1e-3, 1.0, 0.0)
    optimizer, scheduler = make_optimizer(groups, 1000, shape.optimizer)
    n = max(shape.batch, FORWARD_IMAGES)
    x = torch.randn(n, shape.channels, shape.image_size, shape.image_size)
    y = torch.randint(0, shape.classes, (n,))
    # Batches up to MAX_STEP_FLOPS a step (a second or so here): a step is linear in its
    # batch past a few images, and the calibration of a big network stays short.
    most = int(MAX_STEP_FLOPS // max(1.0, 3 * flop_profile(shape)[0]))
    small = min(SMALL_BATCH, shape.batch, max(1, most // 2))
    large = max(small, min(shape.batch, most))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seconds = [_step_seconds(model, (optimizer, scheduler), (x, y), b) for b in (small, large)]
        forward = _forward_seconds(model, x, y)
    finally:
        torch.set_num_threads(previous)
    image = (seconds[1] - seconds[0]) / (large - small) if large > small else 0.0
    if image <= 0:  # one batch size only, or noise larger than the difference: per image
        image = seconds[1] / large
    fixed = max(0.0, seconds[1] - large * image)
    return Speed(fixed, image, forward / FORWARD_IMAGES)


def _step_seconds(model, optimization, data, batch: int) -> float:
    """Seconds of one optimizer step at `batch`: the best of 2 x TIMED_STEPS steps after a
    warm-up step, or the warm-up step alone where it took over SLOW_STEP_S (a big network
    on a small machine: the calibration stays short)."""
    (optimizer, scheduler), (x, y) = optimization, data
    generator = torch.Generator().manual_seed(0)

    def steps(n: int) -> float:
        return _timed(lambda: train_steps(model, optimizer, scheduler, x, y, n, batch, generator))

    first = steps(1)
    if first > SLOW_STEP_S:
        return first
    return min(steps(TIMED_STEPS) for _ in range(2)) / TIMED_STEPS


def _forward_seconds(model, x, y) -> float:
    """Seconds of an eval-mode forward pass of FORWARD_IMAGES images (best of 2)."""
    first = _timed(lambda: accuracy(model, x[:FORWARD_IMAGES], y[:FORWARD_IMAGES]))
    if first > SLOW_STEP_S:
        return first
    return min(
        _timed(lambda: accuracy(model, x[:FORWARD_IMAGES], y[:FORWARD_IMAGES])) for _ in range(2)
    )


def read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_cache(path: Path, data: dict) -> None:
    """Atomically (a killed plan never leaves half a file); a folder that cannot be written
    only costs the next plan its calibration."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".tmp{os.getpid()}")
        partial.write_text(json.dumps(data, indent=1, sort_keys=True))
        partial.replace(path)
    except OSError:
        pass


def calibrate(
    checkpoints: str, shapes: list[Shape], threads: int
) -> tuple[dict[Shape, Speed], list[str]]:
    """A Speed per shape (cached in `checkpoints`/plan-calibration.json), and notes on what
    was estimated rather than measured."""
    path = Path(checkpoints) / CALIBRATION_FILE
    cache = read_cache(path)
    flops = {shape: flop_profile(shape)[0] for shape in shapes}
    speeds: dict[Shape, Speed] = {}
    spent, changed = 0.0, False
    for shape in sorted(set(shapes), key=lambda s: (flops[s] * s.batch, s.arch)):
        key = shape.key(threads)
        if key in cache:
            speeds[shape] = Speed(**cache[key])
            continue
        if spent > CALIBRATION_BUDGET_S:  # each measurement is bounded (MAX_STEP_FLOPS)
            continue
        started = time.perf_counter()
        speeds[shape] = measure_speed(shape, threads)
        spent += time.perf_counter() - started
        cache[key], changed = asdict(speeds[shape]), True
    notes = _by_flops(speeds, flops)
    if changed:
        write_cache(path, cache)
    return speeds, notes


def _by_flops(speeds: dict[Shape, Speed], flops: dict[Shape, float]) -> list[str]:
    """Fill in the shapes not timed from their FLOPs, at the seconds per FLOP measured."""
    missing = [shape for shape in flops if shape not in speeds]
    # The rates of the biggest networks timed: small ones spend more per FLOP.
    timed = sorted(
        ((s, v) for s, v in speeds.items() if v.measured and flops[s] > 0),
        key=lambda item: -flops[item[0]],
    )[:3]
    if not missing:
        return []
    if not timed:  # nothing timed at all (cannot happen with a budget > 0): a guess
        timed = [(next(iter(flops)), measure_speed(next(iter(flops)), 1))]
    per_flop = statistics.median(v.image_s / flops[s] for s, v in timed)
    forward_per_flop = statistics.median(v.forward_s / flops[s] for s, v in timed)
    fixed = statistics.median(v.step_s for _, v in timed)
    for shape in missing:
        f = flops[shape]
        speeds[shape] = Speed(fixed, f * per_flop, f * forward_per_flop, measured=False)
    names = ", ".join(sorted({s.arch for s in missing}))
    return [
        f"not timed (over the calibration's {CALIBRATION_BUDGET_S:.0f} s): {names}, estimated "
        f"from their FLOPs at the seconds per FLOP measured on the others"
    ]


def render_seconds(checkpoints: str) -> float:
    """Seconds to render one source glyph (pretraining renders `source.images` of them)."""
    from trainables.glyphs import render_glyphs

    path = Path(checkpoints) / CALIBRATION_FILE
    cache = read_cache(path)
    key = f"v{CALIBRATION_VERSION}|{platform.node()}|render glyph"
    if key not in cache:
        cache[key] = _timed(lambda: render_glyphs(RENDER_IMAGES, 0)) / RENDER_IMAGES
        write_cache(path, cache)
    return float(cache[key])
