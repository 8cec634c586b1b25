"""Against the peer a user would write: the same trials through Ray's documented recipe
and through this service, wall time ratio.

One fixed list of trial configurations is drawn once (seeded) from the default study's
space (its sizes, both architectures, every strategy label, learning rates log-uniform
in its range, its steps per size) and run, on one local Ray runtime of all CPUs, by:

- peer: a Tune study as Ray's documentation writes one: `Tuner` + `OptunaSearch` +
  `ASHAScheduler` + `MLflowLoggerCallback`, one search across all sizes, no feature
  cache, no checkpoints. The fixed list goes in as OptunaSearch's `points_to_evaluate`
  (a trial index, looked up by the trainable), so Optuna asks and tells as usual but
  proposes exactly the list. Its trial function is this service's own
  (`trainables.train.tune_trial`), so only orchestration and caching differ. Twice:
  with Ray's default `reuse_actors=False` (a new worker per trial), and tuned, with
  `reuse_actors=True` as Ray's performance guide says.
- service: the same list through this service's Tuner (bench/in_study.py: reused
  actors, the feature cache, checkpoints as its default `fault_tolerance` has them, its
  MLflow callback).

ASHA stops some of the peer's trials early, so the peer does less training than the
service: the ratio is, if anything, in the peer's favour.

    python bench/peer.py [--quick] [--trials 40] [--repeats 1]

Prints the ratio last (peer with reuse_actors wall time / service wall time; goal 1.5).
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
import random
import statistics
import time

from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from bench.common import ratio_line
from bench.in_study import (
    bench_config,
    ray_and_folder,
    run_in_study,
    source_states,
    study_world,
    trial_configs,
)
from study.stages.context import search_labels
from study.stages.pretrain import weights_for
from trainables.contract import Key, Report
from trainables.datasets import load_target
from trainables.train import tune_trial

GOAL = 1.5
INDEX = "trial_index"


def draw_trials(config, count: int, seed: int = 0) -> list[dict]:
    """`count` trials drawn from the study's space: size, (architecture, label), lr."""
    rng = random.Random(seed)
    labels, sizes = search_labels(config), config.target.sizes
    low, high = math.log(config.search.lr.low), math.log(config.search.lr.high)
    trials = []
    for _ in range(count):
        label, size = rng.choice(labels), rng.choice(sizes)
        trials.append(
            {
                Key.ARCH: label.arch,
                Key.STRATEGY: label.strategy,
                Key.FREEZE: label.freeze,
                Key.LR: math.exp(rng.uniform(low, high)),
                Key.SIZE: size,
                Key.WEIGHTS: weights_for(label.strategy, label.arch, config.source.dataset),
            }
        )
    return trials


def peer_trial(config: dict, configs: list[dict], target, sources) -> None:
    """The peer's trial function: the listed configuration, trained by tune_trial."""
    tune_trial(configs[config[INDEX]], {target.name: target}, sources)


def run_peer(folder, name: str, configs, target, sources, reuse: bool) -> float:
    """Wall seconds for the documented recipe to run `configs`."""
    peer_configs = [c | {Key.FEATURE_CACHE: False} for c in configs]
    trainable = tune.with_parameters(
        peer_trial, configs=peer_configs, target=target, sources=sources
    )
    points = [{INDEX: i} for i in range(len(configs))]
    tuner = tune.Tuner(
        trainable,
        param_space={INDEX: tune.randint(0, len(configs))},
        tune_config=tune.TuneConfig(
            metric=Report.VAL_ACC,
            mode="max",
            search_alg=OptunaSearch(points_to_evaluate=points, seed=0),
            scheduler=ASHAScheduler(max_t=configs[0][Key.REPORTS], grace_period=1),
            num_samples=len(configs),
            reuse_actors=reuse,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(folder / "peer_results"),
            callbacks=[
                MLflowLoggerCallback(
                    tracking_uri=f"sqlite:///{folder / 'peer-mlflow.db'}", experiment_name=name
                )
            ],
            verbose=0,
        ),
    )
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        results = tuner.fit()
    seconds = time.perf_counter() - started
    if results.errors:
        raise RuntimeError(f"peer: {len(results.errors)} trial(s) failed: {results.errors[0]}")
    return seconds


def measure(folder, trials, target, sources, repeat: int) -> dict[str, float]:
    world = study_world(folder, f"service-{repeat}", ["lenet5", "cnn4"], None, preset="default")
    configs = trial_configs(world.config, target, trials)
    service = run_in_study(world, f"service-{repeat}", target, sources, configs)
    seconds = {"service": service.seconds}
    for reuse in (False, True):
        name = f"peer-{repeat}-reuse-{reuse}"
        seconds[f"peer, reuse_actors={reuse}"] = run_peer(
            folder, name, configs, target, sources, reuse
        )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 trials, 1 repeat")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    count, repeats = (6, 1) if args.quick else (args.trials, args.repeats)
    with ray_and_folder(num_cpus=None) as folder:
        config = bench_config(folder, 1, None, "default")
        target = load_target("digits", config.target.val_per_class, config.target.test_per_class)
        trials = draw_trials(config, count)
        sources = source_states(config.search.architectures)
        print(f"{count} trials drawn once from the default study's space; median of {repeats}")
        runs = [measure(folder, trials, target, sources, r) for r in range(repeats)]
    seconds = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
    for way, value in seconds.items():
        print(f"{way:<26} {value:>7.1f} s  {value / seconds['service']:>5.2f}x the service's")
    tuned = seconds["peer, reuse_actors=True"] / seconds["service"]
    print(ratio_line("peer (reuse_actors) wall time / service wall time", tuned, GOAL))


if __name__ == "__main__":
    main()
