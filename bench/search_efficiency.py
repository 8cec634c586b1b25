"""Search efficiency: the study's own search (TPE + ASHA) against a full grid, at one size.

At one target size (default: 5 examples per class of the default preset's digits), two
searches of the same space, each followed by the same confirmation:

- grid: every (architecture, strategy label) of the default preset x `--lrs` values of
  the label's main parameter (the learning rate, or C for logreg/svm, k for knn), spread
  over the preset's range as the study spreads its first trials
  (search_spaces.transfer.grid_points); every other parameter at the middle of its range
  (log scale; knn's metric: euclidean). Every trial runs to the end, through the study's
  Tuner (study.tuning.tuner.confirm_tuner running the fixed list, bench/in_study.py).
- study: the study's search phase as `study run` runs it (study.stages.search.run_search:
  one Optuna TPE study per label with the preset's `trials_per_label`, Ray Tune), with
  ASHA inside each label (`search.early_stopping: true`; the preset itself leaves it off).

Each side's best trial is chosen by validation accuracy alone (the study's rule,
study.stages.confirm: trials that ran to the end first, then best validation accuracy,
then the earlier trial) and confirmed as the study's confirm phase confirms a label's best
(study.stages.confirm.confirm_configs: retrained on each of the preset's seeds); its
confirmed accuracy is the mean test accuracy over those seeds. Test accuracy is read,
never used to choose.

Training steps spent in the search (confirmation excluded: the same for both): a
gradient-trained trial counts the SGD steps it trained (an ASHA-stopped trial only the
steps up to its last report); a classical head (logreg, svm, knn) counts its one forward
pass over the training subset as ceil(training images / batch size) steps (an overcount:
a forward pass is about a third of a training step's work). Validation passes are not
counted on either side. Real source weights come from the study's pretrain stage
(study.stages.pretrain.pretrain_sources: cached in `pretrained/` under the working folder, as
`study run` caches them). `--quick` checks the machinery only: size 2, lenet5 with 4
strategies, 2 values and 2 trials per label, 8 steps, 1 seed, stand-in random weights.

    python bench/search_efficiency.py [--quick] [--size 5] [--lrs 4] [--seeds N]
                                      [--trials-per-label N]

Goal: the study's confirmed best within 1 point of the grid's, on at most 30% of the
grid's training steps. Prints the ratio last (study steps / grid steps; goal <= 0.3).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ on sys.path, not the repo root that `bench.*` is in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import io
import math
import statistics
import time

from bench.common import ratio_line
from bench.in_study import ray_and_folder, run_in_study, source_states, study_world
from search_spaces.strategies import get_strategy, strategy_label
from search_spaces.transfer import define_label, grid_points
from study.config.files import load_preset
from study.config.schema import StudyConfig
from study.config.size_buckets import StepBucket
from study.stages.confirm import confirm_configs
from study.stages.context import search_labels
from study.stages.load import load_checked_target
from study.stages.pretrain import pretrain_sources
from study.stages.search import run_search, size_constants, trial_config
from study.tuning.searcher import OBJECTIVE
from trainables.contract import Key, Report, is_completed
from trainables.train import step_chunks

GOAL_RATIO = 0.3  # study steps / grid steps, at most
GOAL_POINTS = 1.0  # study's confirmed best at most this far below the grid's
QUICK = {"size": 2, "lrs": 2, "seeds": 1, "trials_per_label": 2, "archs": ["lenet5"], "steps": 8}
QUICK_STRATEGIES = ["scratch", "finetune", "linear-probe", "knn"]


class MiddleTrial:
    """An Optuna trial stand-in for the grid: the given parameters, and every other one
    at the middle of its range (log scale where the space is), a categorical's first
    choice. Fed to the study's own define_label, so the grid's configs are the study's."""

    def __init__(self, fixed: dict) -> None:
        self.fixed = fixed

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        middle = math.sqrt(low * high) if log else (low + high) / 2
        return self.fixed.get(name, middle)

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self.fixed.get(name, (low + high) // 2)

    def suggest_categorical(self, name: str, choices):
        return self.fixed.get(name, choices[0])


def bench_study_config(config: StudyConfig, args) -> StudyConfig:
    """The default preset at one size, ASHA on, and the budgets the options ask for."""
    target = config.target.model_copy(update={"sizes": [args.size], "seeds": args.seeds})
    search = {"early_stopping": True, "trials_per_label": args.trials_per_label}
    training = {}
    if args.quick:
        search |= {"architectures": QUICK["archs"], "strategies": QUICK_STRATEGIES}
        training["steps"] = [StepBucket(up_to=None, steps=QUICK["steps"])]
    return config.model_copy(
        update={
            "target": target,
            "search": config.search.model_copy(update=search),
            "training": config.training.model_copy(update=training),
        }
    )


def grid_configs(config: StudyConfig, target, count: int) -> list[dict]:
    """Every label x `count` values of its main parameter, as full Tune configs."""
    ranges, size = config.search.ranges(), config.sizes()[0]
    constants = size_constants(config, target, size)
    torchvision = config.source.weights == "torchvision"
    configs = []
    for label in search_labels(config):
        for point in grid_points(label.strategy, ranges, count):
            trial = MiddleTrial(point)
            suggestion = define_label(trial, label.arch, label.strategy, label.freeze, ranges)
            configs.append(trial_config(suggestion, constants, config.source.dataset, torchvision))
    return configs


def trained_steps(result, classical_steps: int) -> int:
    """Steps a search trial spent (see the module doc for how they are counted)."""
    config, metrics = result.config, result.metrics or {}
    if get_strategy(config[Key.STRATEGY]).classical:
        return classical_steps
    chunks = step_chunks(config[Key.STEPS], config[Key.REPORTS])
    return sum(chunks[: int(metrics.get(Report.EPOCH, 0))])


def best_by_validation(results):
    """The study's rule (confirm_configs): ran to the end first, then the best validation
    accuracy, then the earlier trial."""
    usable = [
        (index, r) for index, r in enumerate(results) if not r.error and OBJECTIVE in r.metrics
    ]

    def rank(item):
        index, result = item
        earlier = -int(result.config.get(Key.OPTUNA_TRIAL, 0))
        return (is_completed(result.metrics), result.metrics[OBJECTIVE], earlier, -index)

    return max(usable, key=rank)[1]


def run_grid(world, target, sources, count: int) -> tuple[list, float]:
    configs = grid_configs(world.config, target, count)
    labels = len(search_labels(world.config))
    print(f"grid: {len(configs)} trials ({count} values x {labels} labels)")
    timing = run_in_study(world, "grid", target, sources, configs)
    return timing.results, timing.seconds


def run_study_search(world, target, sources) -> tuple[list, float]:
    config = world.config
    budget = config.search.trials_per_label * len(search_labels(config))
    print(f"study: {budget} trials (TPE, {config.search.trials_per_label} per label; ASHA)")
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the phase's own progress lines
        targets = {config.target.key: target}
        results = run_search(world.context("bench", targets, sources))
    return results, time.perf_counter() - started


def confirm(world, target, sources, picks: dict) -> dict[str, list[float]]:
    """Each side's pick retrained on every seed (one Tuner for both); test accuracies."""
    seeds = world.config.target.seeds
    per_side = {side: confirm_configs([pick], seeds) for side, pick in picks.items()}
    unique: list[dict] = []
    for configs in per_side.values():
        unique += [c for c in configs if c not in unique]
    results = run_in_study(world, "confirm", target, sources, unique).results

    def test_acc(config: dict) -> float:
        return next(r.metrics[Report.TEST_ACC] for r in results if r.config == config)

    return {side: [test_acc(c) for c in configs] for side, configs in per_side.items()}


def describe(result) -> str:
    config = result.config
    label = strategy_label(config[Key.STRATEGY], config[Key.FREEZE])
    name, _ = get_strategy(config[Key.STRATEGY]).grid or ("lr", "lr")
    key = {"lr": Key.LR, "knn/k": Key.KNN_K}.get(name, Key.C)
    value = config[key]
    return f"{config[Key.ARCH]} {label} {key} {value:.3g} (val {result.metrics[OBJECTIVE]:.3f})"


def side_line(side: str, results, steps: int, seconds: float, pick, accs) -> str:
    stopped = sum(1 for r in results if not is_completed(r.metrics or {}))
    spread = ", ".join(f"{a:.3f}" for a in accs)
    return (
        f"{side:<6} {len(results)} trials ({stopped} stopped early), {steps} steps, "
        f"{seconds:.0f} s; best by validation: {describe(pick)}; confirmed test accuracy "
        f"{statistics.fmean(accs):.4f} over {len(accs)} seed(s) ({spread})"
    )


def sources_for(world, args) -> dict[str, dict]:
    if args.quick:
        return source_states(world.config.search.architectures)
    return pretrain_sources(world.config, world.client)


def report(world, target, runs: dict, accs: dict) -> None:
    subset = len(target.train_subset(world.config.sizes()[0], 0))
    classical = math.ceil(subset / world.config.training.batch_size)
    steps = {side: sum(trained_steps(r, classical) for r in runs[side][0]) for side in runs}
    print(
        f"steps: SGD steps trained (ASHA-stopped trials: up to their last report); a "
        f"classical head: {classical} (its forward pass over {subset} training images)"
    )
    for side, (results, seconds, pick) in runs.items():
        print(side_line(side, results, steps[side], seconds, pick, accs[side]))
    points = 100 * (statistics.fmean(accs["study"]) - statistics.fmean(accs["grid"]))
    ratio = steps["study"] / steps["grid"]
    close, cheap = points >= -GOAL_POINTS, ratio <= GOAL_RATIO
    print(f"study's confirmed best - grid's: {points:+.1f} points")
    print(
        f"goal: within {GOAL_POINTS:g} point of the grid's best ({points:+.1f}: "
        f"{'met' if close else 'not met'}) on at most {GOAL_RATIO:.0%} of its steps "
        f"({ratio:.0%}: {'met' if cheap else 'not met'}): {'met' if close and cheap else 'not met'}"
    )
    print(ratio_line("study steps / grid steps", ratio, GOAL_RATIO, at_most=True))


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small space, about a minute")
    parser.add_argument("--size", type=int, help="examples per class (default 5)")
    parser.add_argument("--lrs", type=int, help="grid values per label (default 4)")
    parser.add_argument("--seeds", type=int, help="confirmation seeds (default: the preset's)")
    parser.add_argument("--trials-per-label", type=int, help="study's budget (preset's)")
    args = parser.parse_args()
    defaults = QUICK if args.quick else {"size": 5, "lrs": 4}
    for name in ("size", "lrs", "seeds", "trials_per_label"):
        if getattr(args, name) is None:
            setattr(args, name, defaults.get(name))
    return args


def main() -> None:
    args = arguments()
    with ray_and_folder(num_cpus=None) as folder:
        archs = QUICK["archs"] if args.quick else load_preset("default").search.architectures
        # Checkpoints as the service's default has them.
        world = study_world(folder, "search-efficiency", archs, None, preset="default")
        args.seeds = args.seeds or world.config.target.seeds
        args.trials_per_label = args.trials_per_label or world.config.search.trials_per_label
        world.config = bench_study_config(world.config, args)
        target = load_checked_target(world.config)
        sources = sources_for(world, args)
        print(
            f"search efficiency at {args.size} examples per class of {target.name}: "
            f"{len(search_labels(world.config))} labels of {', '.join(archs)}"
        )
        grid, grid_seconds = run_grid(world, target, sources, args.lrs)
        study, study_seconds = run_study_search(world, target, sources)
        picks = {"grid": best_by_validation(grid), "study": best_by_validation(study)}
        accs = confirm(world, target, sources, picks)
        runs = {
            "grid": (grid, grid_seconds, picks["grid"]),
            "study": (study, study_seconds, picks["study"]),
        }
        report(world, target, runs, accs)


if __name__ == "__main__":
    main()
