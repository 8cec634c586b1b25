"""The Tune function trainable: one trial = one configuration on one training subset.

Builds the model from the registry, loads the source weights (none for `scratch`),
replaces the head, freezes the first `freeze` stages, trains a fixed number of SGD steps
with separate head and backbone learning rates, reports `val_acc` after each of
`reports` equal chunks ("epochs") with `ray.tune.report`, and finally the `test_acc` of
the weights that had the best `val_acc`. Test accuracy never steers anything here. What
a config holds and a report carries is the trial contract (trainables.contract).

How a strategy trains is its registered spec (search_spaces.strategies): a phase plan
(every registered one trains in one phase; `lp-ft` first fits its new head as a linear
probe of the frozen network, trainables.classical.probe_head), or a classical head
(`logreg`, `svm`, `knn`: trainables.classical) fitted on the frozen network's pooled
features, which reports the same metrics `reports` times (there is nothing to iterate),
so the driver, ASHA and Optuna treat every strategy alike.

The phases run in trainables.phases: while stages are frozen and no augmentation is on,
only the rest of the network runs, on the frozen prefix's cached output; every report
says whether it did (`feature_cache`: `on` or `off: <why>`).
"""

from __future__ import annotations

import copy
import time
from functools import partial

import torch

from search_spaces.strategies import get_strategy
from trainables.classical import fit_classical, probe_head
from trainables.contract import Key, Report, TrialConfig, is_completed
from trainables.datasets import TargetData
from trainables.datasets.augment import augment
from trainables.feature_store import FeatureStore
from trainables.loops import accuracy, cpu_threads, seeded_generator
from trainables.phases import Phases
from trainables.registry import get_arch
from trainables.resume import best_of, restore_run, snapshot
from trainables.transfer import freeze
from trainables.weights import build_for_target


def build_trial_model(cfg: TrialConfig, target: TargetData, sources: dict[str, dict]):
    spec = get_arch(cfg.arch)
    model = build_for_target(
        spec, cfg.weights, target.num_classes, target.in_channels, sources.get(cfg.arch)
    )
    return spec, freeze(model, spec, cfg.freeze)


def prepare(cfg: TrialConfig, target: TargetData, sources: dict[str, dict]):
    """The seeded model and the training and validation tensors, on the trial's device.

    On CUDA (a trial Ray gave a GPU) the model and images are channels_last and the
    forward passes run under bf16 autocast (trainables.loops); on CPU, float32.
    """
    device = trial_device()
    torch.manual_seed(cfg.seed)
    generator = seeded_generator(cfg.seed, device)

    spec, model = build_trial_model(cfg, target, sources)
    model.to(device)
    # The target arrives as stored (uint8); resizing and normalising happen here, on the GPU
    # where the trial has one.
    x, y = target.train_subset(cfg.size, cfg.seed).tensors(device)
    val_x, val_y = target.val.tensors(device)
    if device.type == "cuda":
        model, x, val_x = (to_channels_last(t) for t in (model, x, val_x))
    return spec, model, (x, y, val_x, val_y), generator


def fit(
    cfg: TrialConfig,
    target: TargetData,
    sources: dict[str, dict],
    report,
    resume: dict | None = None,
    snapshots: bool = False,
):
    """Train and evaluate one trial, calling `report(metrics)` after every epoch.

    Returns the model (holding the best-validation weights; for a classical head, a
    `FrozenFeatureClassifier`) and the final metrics. With `snapshots`, the call is
    `report(metrics, state)`, `state()` giving the training state (trainables.resume);
    `resume` is such a state: training goes on after its epoch.
    """
    spec, model, (x, y, val_x, val_y), generator = prepare(cfg, target, sources)
    store = FeatureStore(cfg.cache_dir)
    strategy = get_strategy(cfg.strategy)
    if strategy.classical:
        return fit_classical(cfg, spec, model, target, (x, y, val_x, val_y), store, report)

    # A resumed trial's weights (its head too) then replace the probe's (resume_point).
    probe = probe_head(cfg, spec, model, x, y, store) if strategy.probed_head else ""
    phases = Phases(cfg, spec, model, (x, val_x), store, probe)
    transform = partial(augment, kinds=cfg.augment, generator=generator) if cfg.augment else None
    best_val, best_state, best_epoch, resumed, seconds = resume_point(resume, model)
    started = time.perf_counter() - seconds
    chunks = step_chunks(cfg.steps, cfg.reports)
    metrics: dict = {}
    for epoch, steps in enumerate(chunks, start=1):
        run, train_loss = phases.train(steps, y, generator, transform, live=epoch > resumed)
        if epoch <= resumed:
            if epoch == resumed:
                restore_run(resume, run, generator)
            continue
        val_acc = accuracy(run.net, run.val_x, val_y)
        if val_acc > best_val:
            best_val, best_state, best_epoch = val_acc, copy.deepcopy(model.state_dict()), epoch
        last = epoch == cfg.reports
        metrics = {
            Report.EPOCH: epoch,
            Report.TRAIN_LOSS: train_loss,
            Report.VAL_ACC: val_acc,
            Report.BEST_VAL_ACC: best_val,
            Report.TRAIN_SECONDS: time.perf_counter() - started,
            Report.TRAINABLE_PARAMS: run.trainable,
            Report.FEATURE_CACHE: phases.cache_summary(),
            Report.COMPLETED: last,
        }
        if last:
            # test_acc only in the last report, of the weights with the best val_acc.
            model.load_state_dict(best_state)
            test_x, test_y = target.test.tensors(y.device)
            metrics[Report.TEST_ACC] = accuracy(run.net, run.inputs(test_x), test_y)
        if snapshots:
            state = (epoch, model, run, best_val, best_state, best_epoch, generator)
            report(metrics, partial(snapshot, *state, metrics[Report.TRAIN_SECONDS]))
        else:
            report(metrics)
    return model, metrics


def step_chunks(steps: int, reports: int) -> list[int]:
    """The steps of each of a trial's `reports` epochs: `steps` split as evenly as it goes."""
    return [steps // reports + (i < steps % reports) for i in range(reports)]


def resume_point(resume: dict | None, model) -> tuple[float, dict | None, int, int, float]:
    """Where a trial restarted from a checkpoint goes on: the model loaded from it, and
    (best val_acc, its weights, its epoch, epochs done, seconds trained); a fresh start
    has done nothing yet."""
    if resume is None:
        return -1.0, None, 0, 0, 0.0
    model.load_state_dict(resume["model"])
    best = (resume["best_val"], best_of(resume, model), resume["best_epoch"])
    return (*best, resume["epoch"], resume["train_seconds"])


def trial_device() -> torch.device:
    """CUDA where the trial has a GPU (Ray sets CUDA_VISIBLE_DEVICES to the ones it
    gave the trial: none leaves CUDA unavailable), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_channels_last(value):
    """channels_last memory format for a model or a batch of images (faster convolutions
    on CUDA tensor cores); other tensors are returned as they are."""
    if isinstance(value, torch.nn.Module):
        return value.to(memory_format=torch.channels_last)
    return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value


def tune_trial(
    config: dict,
    targets: dict[str, TargetData],
    sources: dict[str, dict],
    checkpoint_every: int = 0,
    checkpoint_after_s: float = 0,
) -> None:
    """The function Ray Tune runs: results go to the driver through `ray.tune.report`.

    `targets` holds every target of the study by name; the trial trains on the one its
    config names (`Key.TARGET`; a config without one: the study's only target).

    Every `checkpoint_every` epochs (0: never; not after the last) once the trial has
    trained `checkpoint_after_s` seconds, the training state goes with the report as a
    `ray.tune.Checkpoint`; a restarted trial starts after the latest one (or from its
    start). Torch uses as many threads as the trial has CPUs (more threads than cores stall
    badly when trials share a machine). Each report says where the trial runs (`node_id`;
    Ray adds `node_ip` and `hostname`) and on what (`device`), for the driver's MLflow tags.
    """
    import ray
    from ray import tune

    from trainables.resume import load_checkpoint, save_checkpoint

    torch.set_num_threads(trial_threads(tune.get_context()))
    device = trial_device()
    name = f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "cpu"
    where = {Report.NODE_ID: ray.get_runtime_context().get_node_id(), Report.DEVICE: name}

    def report(metrics: dict, state=None) -> None:
        metrics = {**metrics, **where}
        due = checkpoint_every and metrics[Report.EPOCH] % checkpoint_every == 0
        due = due and metrics[Report.TRAIN_SECONDS] >= checkpoint_after_s
        if state is not None and due and not is_completed(metrics):
            save_checkpoint(state(), metrics, tune.report)
        else:
            tune.report(metrics)

    resume = load_checkpoint(tune.get_checkpoint())
    target = targets[config[Key.TARGET]] if Key.TARGET in config else only(targets)
    fit(
        TrialConfig.from_tune(config),
        target,
        sources,
        report,
        resume=resume,
        snapshots=checkpoint_every > 0,
    )


def only(targets: dict[str, TargetData]) -> TargetData:
    if len(targets) != 1:
        raise ValueError(f"a trial config without a target, and {len(targets)} targets")
    return next(iter(targets.values()))


def trial_threads(context) -> int:
    """The trial's CPU count (at least 1) from its Ray resources."""
    try:
        resources = context.get_trial_resources().required_resources
    except Exception:  # not inside a Tune trial
        return max(1, torch.get_num_threads())
    return cpu_threads(resources.get("CPU", 1))
