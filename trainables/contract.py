"""The trial contract: what the driver hands a trial, and what a trial hands back.

Both sides of the Ray boundary name the same things: the searcher, the tuner, the MLflow
callback and the confirm phase read the Tune config a trial was given and the reports it
made. Those names live here, once, instead of as string literals on either side:

- `TrialConfig`, the typed Tune config: its field names are the config keys (`Key`), and
  a key a strategy does not use is left out of the config, so its default applies;
- `Report`, the names every report of a trial carries;
- the completed flag: `True` only in the last report of a trial that ran all its
  epochs. A trial ASHA stopped early ends with a report whose flag is `False`. The driver
  asks `is_completed(result)` rather than guessing from which metrics are present.

Torch-free (dataclasses only), so the driver, the search space and a stand-in trainable
import it without loading the training stack.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields


class Key:
    """Tune config keys: `TrialConfig`'s field names, then the driver's own bookkeeping
    keys, which travel with the config and which the trainable ignores."""

    ARCH = "arch"
    STRATEGY = "strategy"
    FREEZE = "freeze"
    LR = "lr"
    BACKBONE_LR_MULT = "backbone_lr_mult"
    WEIGHT_DECAY = "weight_decay"
    SIZE = "size"
    SEED = "seed"
    STEPS = "steps"
    REPORTS = "reports"
    BATCH_SIZE = "batch_size"
    WEIGHTS = "weights"
    LAYER_DECAY = "layer_decay"
    PROBE_C = "probe_C"
    OPTIMIZER = "optimizer"
    C = "C"
    KNN_K = "knn_k"
    KNN_METRIC = "knn_metric"
    AUGMENT = "augment"
    FEATURE_CACHE = "feature_cache"
    CACHE_DIR = "cache_dir"
    # The driver's: search | confirm, the target's name, the Optuna trial behind a config.
    PHASE = "phase"
    DATASET = "dataset"
    OPTUNA_TRIAL = "optuna_trial"
    STRATUM = "stratum"  # the Optuna study (target, size, architecture, label) it came from
    TARGET = "target"  # the target's name (TargetConfig.key): which data to train on
    CANDIDATE = "candidate"  # confirm: the label's n-th best search configuration (1: best)


DRIVER_KEYS = (Key.PHASE, Key.DATASET, Key.OPTUNA_TRIAL, Key.STRATUM, Key.TARGET, Key.CANDIDATE)


class Report:
    """Names in a trial's reports. Every report carries EPOCH .. DEVICE and COMPLETED
    (a classical head has no TRAIN_LOSS: it does not iterate); TEST_ACC comes only with
    the last epoch, of the weights with the best validation accuracy."""

    EPOCH = "epoch"  # 1..reports
    TRAIN_LOSS = "train_loss"
    VAL_ACC = "val_acc"
    BEST_VAL_ACC = "best_val_acc"
    TRAIN_SECONDS = "train_seconds"
    TRAINABLE_PARAMS = "trainable_params"
    FEATURE_CACHE = "feature_cache"  # on | off: <why>
    NODE_ID = "node_id"  # where the trial ran (Ray adds node_ip and hostname)
    DEVICE = "device"  # what it trained on: cpu, or cuda (the GPU's name)
    TEST_ACC = "test_acc"
    COMPLETED = "completed"


def is_completed(result: dict) -> bool:
    """Whether `result` is the last report of a trial that ran all its epochs."""
    return bool(result.get(Report.COMPLETED, False))


@dataclass(frozen=True)
class TrialConfig:
    arch: str
    strategy: str
    freeze: int
    lr: float
    backbone_lr_mult: float
    weight_decay: float
    size: int | None  # examples per class; None = the whole training pool (ALL)
    seed: int
    steps: int
    reports: int
    batch_size: int
    weights: str  # a weight source, see trainables.weights
    # Optional: absent keys take these values (a strategy only sets what it uses).
    layer_decay: float = 1.0  # backbone lr decay per stage toward the input (1: none)
    probe_C: float = 0.01  # lp-ft: inverse regularisation of its logistic-regression probe
    optimizer: str = "sgd"  # sgd | adam (trainables.loops)
    C: float = 1.0  # logreg, svm: inverse regularisation strength
    knn_k: int = 5  # knn: neighbours (capped at the training set's size)
    knn_metric: str = "euclidean"  # knn: euclidean | cosine
    augment: tuple[str, ...] = ()  # crop, flip, shift (turns the feature cache off)
    feature_cache: bool = True
    cache_dir: str | None = None  # where cached features persist across trials (None: memory)

    @classmethod
    def from_tune(cls, config: dict) -> TrialConfig:
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [name for name in required if name not in config]
        if missing:
            raise ValueError(f"trial config lacks {', '.join(missing)}")
        values = {f.name: config[f.name] for f in fields(cls) if f.name in config}
        values[Key.SIZE] = parse_size(values[Key.SIZE])
        values[Key.AUGMENT] = parse_augment(values.get(Key.AUGMENT, ()))
        return cls(**values)


# A size (examples per class) is an int, or the whole training pool: None in code, ALL
# where it is written down (a config file, a Tune config, an MLflow tag, a name).
ALL = "all"


def parse_size(value) -> int | None:
    """A written size as trials and size buckets read it: ALL (or None) -> None, else the
    int (`5` or `"5"` -> 5)."""
    return None if value in (None, ALL) else int(value)


def config_size(size: int | None) -> int | str:
    """A size as it is written down (a Tune config, a tag, a name): ALL for None (the whole
    pool), else the int itself; `parse_size` reads it back."""
    return ALL if size is None else size


def parse_augment(value) -> tuple[str, ...]:
    """`crop+flip`, `none`, '' or a list -> ('crop', 'flip') etc."""
    if isinstance(value, str):
        value = [] if value in ("", "none") else value.split("+")
    return tuple(value)
