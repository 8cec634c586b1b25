"""The Tune function trainable: one trial = one configuration on one training subset.

Builds the model from the registry, loads the source weights (none for `scratch`),
replaces the head, freezes the first `freeze` stages, trains a fixed number of SGD steps
with separate head and backbone learning rates, reports `val_acc` after each of
`reports` equal chunks ("epochs") with `ray.tune.report`, and finally the `test_acc` of
the weights that had the best `val_acc`. Test accuracy never steers anything here.

Strategies: `scratch`, `finetune`, `freeze-b` and `linear-probe` train in one phase;
`lp-ft` (Kumar et al. 2022) linear-probes for `lp_frac` of the steps, then fine-tunes
everything at `lr * ft_lr_mult` with a fresh optimizer; `logreg`, `svm` and `knn` fit a
scikit-learn estimator on the frozen network's pooled features and report the same
metrics `reports` times (there is nothing to iterate), so the driver, ASHA and Optuna
treat every strategy alike.

While stages are frozen and no augmentation is on, the frozen prefix's output comes from
the feature cache (trainables.features) and only the rest of the network runs; every
report says whether it did (`feature_cache`: `on` or `off: <why>`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import MISSING, dataclass, fields
from functools import partial

import numpy as np
import torch

from trainables.datasets import TargetData
from trainables.datasets.augment import augment
from trainables.feature_store import FeatureStore
from trainables.features import PrefixCache, cached_rest, capture
from trainables.heads import fit_head
from trainables.loops import accuracy, make_optimizer, train_steps
from trainables.registry import ArchSpec, count_params, get_arch
from trainables.resume import best_of, restore_run, snapshot
from trainables.transfer import CLASSICAL_STRATEGIES, freeze, param_groups
from trainables.weights import build_for_target


@dataclass(frozen=True)
class TrialConfig:
    arch: str
    strategy: str
    freeze: int
    lr: float
    backbone_lr_mult: float
    weight_decay: float
    size: int | None  # examples per class; None = the whole training pool
    seed: int
    steps: int
    reports: int
    batch_size: int
    weights: str  # a weight source, see trainables.weights
    # Optional: absent keys take these values (a strategy only sets what it uses).
    layer_decay: float = 1.0  # backbone lr decay per stage toward the input (1: none)
    ft_lr_mult: float = 0.1  # lp-ft: the fine-tune phase's lr, relative to `lr`
    lp_frac: float = 0.5  # lp-ft: share of the steps spent linear-probing
    C: float = 1.0  # logreg, svm: inverse regularisation strength
    knn_k: int = 5  # knn: neighbours (capped at the training set's size)
    knn_metric: str = "euclidean"  # knn: euclidean | cosine
    augment: tuple[str, ...] = ()  # crop, flip (turns the feature cache off)
    feature_cache: bool = True
    cache_dir: str | None = None  # where cached features persist across trials (None: memory)

    @classmethod
    def from_tune(cls, config: dict) -> TrialConfig:
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [name for name in required if name not in config]
        if missing:
            raise ValueError(f"trial config lacks {', '.join(missing)}")
        values = {f.name: config[f.name] for f in fields(cls) if f.name in config}
        values["size"] = None if values["size"] in (None, "all") else int(values["size"])
        values["augment"] = parse_augment(values.get("augment", ()))
        return cls(**values)


def parse_augment(value) -> tuple[str, ...]:
    """`crop+flip`, `none`, '' or a list -> ('crop', 'flip') etc."""
    if isinstance(value, str):
        value = [] if value in ("", "none") else value.split("+")
    return tuple(value)


def build_trial_model(cfg: TrialConfig, target: TargetData, sources: dict[str, dict]):
    spec = get_arch(cfg.arch)
    model = build_for_target(
        spec, cfg.weights, target.num_classes, target.in_channels, sources.get(cfg.arch)
    )
    return spec, freeze(model, spec, cfg.freeze)


@dataclass(frozen=True)
class Phase:
    name: str
    steps: int
    boundary: int
    lr: float
    backbone_lr_mult: float
    layer_decay: float


def phases(cfg: TrialConfig, spec: ArchSpec) -> list[Phase]:
    if cfg.strategy != "lp-ft":
        return [
            Phase(
                cfg.strategy,
                cfg.steps,
                cfg.freeze,
                cfg.lr,
                cfg.backbone_lr_mult,
                cfg.layer_decay,
            )
        ]
    probe = min(cfg.steps, max(1, round(cfg.steps * cfg.lp_frac)))
    return [
        Phase("probe", probe, spec.num_stages, cfg.lr, 1.0, 1.0),
        Phase(
            "fine-tune",
            cfg.steps - probe,
            cfg.freeze,
            cfg.lr * cfg.ft_lr_mult,
            cfg.backbone_lr_mult,
            cfg.layer_decay,
        ),
    ]


def cache_off_reason(cfg: TrialConfig, boundary: int) -> str:
    if boundary == 0:
        return "off: nothing frozen"
    if cfg.augment:
        return f"off: augmentation ({'+'.join(cfg.augment)}) changes the inputs every step"
    if not cfg.feature_cache:
        return "off: disabled by the study config"
    return ""


class PhaseRun:
    """One phase set up: the boundary applied, the network to train and its inputs, an
    optimizer over the trainable parameters only."""

    def __init__(self, phase, cfg, spec, model, data, store) -> None:
        x, val_x = data
        freeze(model, spec, phase.boundary)
        self.status = cache_off_reason(cfg, phase.boundary)
        self.net, self.x, self.val_x, self.cache = model, x, val_x, None
        if not self.status:
            cache, rest, self.status = cached_rest(model, spec, phase.boundary, store, x)
            if cache is not None:
                self.net, self.cache = rest, cache
                self.x, self.val_x = cache.features(x), cache.features(val_x)
        groups = param_groups(
            model, spec, phase.lr, phase.backbone_lr_mult, cfg.weight_decay, phase.layer_decay
        )
        self.optimizer, self.scheduler = make_optimizer(groups, phase.steps)
        self.remaining = phase.steps
        self.trainable = count_params(model, trainable_only=True)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.cache.features(x) if self.cache is not None else x


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

    On CUDA (a trial Ray gave a GPU) the model and images are channels_last and the
    forward passes run under bf16 autocast (trainables.loops); on CPU, float32.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

    spec, model = build_trial_model(cfg, target, sources)
    model.to(device)
    x, y = (t.to(device) for t in target.train_subset(cfg.size, cfg.seed).tensors())
    val_x, val_y = (t.to(device) for t in target.val.tensors())
    if device.type == "cuda":
        model, x, val_x = (to_channels_last(t) for t in (model, x, val_x))
    store = FeatureStore(cfg.cache_dir)
    if cfg.strategy in CLASSICAL_STRATEGIES:
        return fit_classical(cfg, spec, model, target, (x, y, val_x, val_y), store, report)

    started = time.perf_counter()
    plan = [phase for phase in phases(cfg, spec) if phase.steps > 0]
    runs: list[PhaseRun] = []

    def current() -> PhaseRun:
        if not runs or (runs[-1].remaining == 0 and len(runs) < len(plan)):
            runs.append(PhaseRun(plan[len(runs)], cfg, spec, model, (x, val_x), store))
        return runs[-1]

    def transform(batch):
        return augment(batch, cfg.augment, generator)

    best_val, best_state, best_epoch, resumed = -1.0, None, 0, 0
    if resume is not None:  # restarted from a checkpoint: go on after its epoch
        model.load_state_dict(resume["model"])
        best_val, best_state = resume["best_val"], best_of(resume, model)
        best_epoch, resumed = resume["best_epoch"], resume["epoch"]
        started -= resume["train_seconds"]
    chunks = [cfg.steps // cfg.reports + (i < cfg.steps % cfg.reports) for i in range(cfg.reports)]
    metrics: dict = {}
    for epoch, steps in enumerate(chunks, start=1):
        loss_sum, done = 0.0, 0
        run = current()
        while steps > 0:
            run = current()
            n = min(steps, run.remaining)
            loss = train_steps(
                run.net,
                run.optimizer,
                run.scheduler,
                run.x,
                y,
                n if epoch > resumed else 0,  # epochs done before a restart: bookkeeping only
                cfg.batch_size,
                generator,
                transform=transform if cfg.augment else None,
            )
            loss_sum, done = loss_sum + loss * n, done + n
            run.remaining -= n
            steps -= n
        if epoch <= resumed:
            if epoch == resumed:
                restore_run(resume, run, generator)
            continue
        val_acc = accuracy(run.net, run.val_x, val_y)
        if val_acc > best_val:
            best_val, best_state, best_epoch = val_acc, copy.deepcopy(model.state_dict()), epoch
        metrics = {
            "epoch": epoch,
            "train_loss": loss_sum / max(done, 1),
            "val_acc": val_acc,
            "best_val_acc": best_val,
            "train_seconds": time.perf_counter() - started,
            "trainable_params": run.trainable,
            "feature_cache": cache_summary(plan, runs),
        }
        if epoch == cfg.reports:
            # test_acc only in the last report, of the weights with the best val_acc.
            model.load_state_dict(best_state)
            test_x, test_y = (t.to(device) for t in target.test.tensors())
            metrics["test_acc"] = accuracy(run.net, run.inputs(test_x), test_y)
        if snapshots:
            state = (epoch, model, run, best_val, best_state, best_epoch, generator)
            report(metrics, partial(snapshot, *state, metrics["train_seconds"]))
        else:
            report(metrics)
    return model, metrics


def to_channels_last(value):
    """channels_last memory format for a model or a batch of images (faster convolutions
    on CUDA tensor cores); other tensors are returned as they are."""
    if isinstance(value, torch.nn.Module):
        return value.to(memory_format=torch.channels_last)
    return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value


def cache_summary(plan: list[Phase], runs: list[PhaseRun]) -> str:
    if len(plan) == 1:
        return runs[0].status if runs else ""
    return "; ".join(f"{phase.name}: {run.status}" for phase, run in zip(plan, runs, strict=False))


class FrozenFeatureClassifier:
    """A frozen network and a classical head fitted on its pooled features."""

    def __init__(self, model, spec: ArchSpec, head) -> None:
        self.model, self.spec, self.head = model, spec, head

    def features(self, x: torch.Tensor) -> np.ndarray:
        pooled = capture(self.model, self.spec.head_module(self.model), x, inputs=True)
        return pooled.flatten(1).cpu().numpy()

    def predict(self, x: torch.Tensor) -> np.ndarray:
        return self.head.predict(self.features(x))


def fit_classical(cfg, spec, model, target, data, store, report):
    """A scikit-learn head on the pooled features of the whole (frozen) network."""
    x, y, val_x, val_y = data
    started = time.perf_counter()
    if cfg.freeze != spec.num_stages:
        raise ValueError(
            f"{cfg.strategy} needs the whole backbone frozen (freeze={spec.num_stages} for "
            f"{spec.name}), got {cfg.freeze}"
        )
    test_x, test_y = (t.to(x.device) for t in target.test.tensors())
    if cfg.feature_cache:
        cache = PrefixCache(model, spec, spec.num_stages, store, head_input=True)
        status = "on"
        if cfg.augment:
            status += f" (augmentation {'+'.join(cfg.augment)} does not apply to classical heads)"

        def pooled(inputs):
            return cache.features(inputs).flatten(1).cpu().numpy()
    else:
        status = "off: disabled by the study config"
        head_module = spec.head_module(model)

        def pooled(inputs):
            return capture(model, head_module, inputs, inputs=True).flatten(1).cpu().numpy()

    train_features, val_features = pooled(x), pooled(val_x)
    labels = y.cpu().numpy()
    head = fit_head(
        cfg.strategy,
        train_features,
        labels,
        C=cfg.C,
        k=cfg.knn_k,
        metric=cfg.knn_metric,
        seed=cfg.seed,
    )
    val_acc = head.accuracy(val_features, val_y.cpu().numpy())
    test_acc = head.accuracy(pooled(test_x), test_y.cpu().numpy())
    seconds = time.perf_counter() - started
    metrics: dict = {}
    for epoch in range(1, cfg.reports + 1):
        # Fitted once; the same result every epoch keeps the report contract of every trial.
        metrics = {
            "epoch": epoch,
            "val_acc": val_acc,
            "best_val_acc": val_acc,
            "train_seconds": seconds,
            "trainable_params": head.params,
            "feature_cache": status,
        }
        if epoch == cfg.reports:
            metrics["test_acc"] = test_acc
        report(metrics)
    return FrozenFeatureClassifier(model, spec, head), metrics


def tune_trial(
    config: dict, target: TargetData, sources: dict[str, dict], checkpoint_every: int = 0
) -> None:
    """The function Ray Tune runs: results go to the driver through `ray.tune.report`.

    Every `checkpoint_every` epochs (0: never; not after the last) the training state goes
    with the report as a `ray.tune.Checkpoint`; a restarted trial starts after the latest
    one. Torch uses as many threads as the trial has CPUs (more threads than cores stall
    badly when trials share a machine). Each report says where the trial runs (`node_id`;
    Ray adds `node_ip` and `hostname`), for the driver's MLflow tags.
    """
    import ray
    from ray import tune

    from trainables.resume import load_checkpoint, save_checkpoint

    torch.set_num_threads(trial_threads(tune.get_context()))
    where = {"node_id": ray.get_runtime_context().get_node_id()}

    def report(metrics: dict, state=None) -> None:
        metrics = {**metrics, **where}
        due = checkpoint_every and metrics["epoch"] % checkpoint_every == 0
        if state is not None and due and "test_acc" not in metrics:
            save_checkpoint(state(), metrics, tune.report)
        else:
            tune.report(metrics)

    resume = load_checkpoint(tune.get_checkpoint())
    fit(
        TrialConfig.from_tune(config),
        target,
        sources,
        report,
        resume=resume,
        snapshots=checkpoint_every > 0,
    )


def trial_threads(context) -> int:
    """The trial's CPU count (at least 1) from its Ray resources."""
    try:
        resources = context.get_trial_resources().required_resources
    except Exception:  # not inside a Tune trial
        return max(1, torch.get_num_threads())
    return max(1, int(resources.get("CPU", 1)))
