"""A trial of a classical-head strategy (`logreg`, `svm`, `knn`): no gradient training;
and lp-ft's linear probe, the same logistic regression put into the network's head.

The whole network stays frozen; a scikit-learn estimator (trainables.heads) is fitted on
its pooled features, once. The trial still reports `reports` times with the same metric
names as a gradient-trained one (trainables.contract), so the driver, ASHA and Optuna
treat every strategy alike.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from trainables.contract import Report
from trainables.features import PrefixCache, capture
from trainables.heads import fit_head, linear_layer
from trainables.registry import ArchSpec


class FrozenFeatureClassifier:
    """A frozen network and a classical head fitted on its pooled features."""

    def __init__(self, model, spec: ArchSpec, head) -> None:
        self.model, self.spec, self.head = model, spec, head

    def features(self, x: torch.Tensor) -> np.ndarray:
        pooled = capture(self.model, self.spec.head_module(self.model), x, inputs=True)
        return pooled.flatten(1).cpu().numpy()

    def predict(self, x: torch.Tensor) -> np.ndarray:
        return self.head.predict(self.features(x))


def pooled_features(cfg, spec: ArchSpec, model, store):
    """(inputs -> pooled features as numpy, feature-cache status)."""
    if cfg.feature_cache:
        cache = PrefixCache(model, spec, spec.num_stages, store, head_input=True)
        status = "on"
        if cfg.augment:
            status += f" (augmentation {'+'.join(cfg.augment)} does not apply to classical heads)"

        def pooled(inputs):
            return cache.features(inputs).flatten(1).cpu().numpy()

        return pooled, status
    head_module = spec.head_module(model)

    def pooled(inputs):
        return capture(model, head_module, inputs, inputs=True).flatten(1).cpu().numpy()

    return pooled, "off: disabled by the study config"


def fit_classical(cfg, spec, model, target, data, store, report):
    """A scikit-learn head on the pooled features of the whole (frozen) network."""
    x, y, val_x, val_y = data
    started = time.perf_counter()
    if cfg.freeze != spec.num_stages:
        raise ValueError(
            f"{cfg.strategy} needs the whole backbone frozen (freeze={spec.num_stages} for "
            f"{spec.name}), got {cfg.freeze}"
        )
    test_x, test_y = target.test.tensors(x.device)
    pooled, status = pooled_features(cfg, spec, model, store)
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
        last = epoch == cfg.reports
        metrics = {
            Report.EPOCH: epoch,
            Report.VAL_ACC: val_acc,
            Report.BEST_VAL_ACC: val_acc,
            Report.TRAIN_SECONDS: seconds,
            Report.TRAINABLE_PARAMS: head.params,
            Report.FEATURE_CACHE: status,
            Report.COMPLETED: last,
        }
        if last:
            metrics[Report.TEST_ACC] = test_acc
        report(metrics)
    return FrozenFeatureClassifier(model, spec, head), metrics


def probe_head(cfg, spec: ArchSpec, model, x: torch.Tensor, y: torch.Tensor, store) -> str:
    """lp-ft's linear probe (Kumar et al. 2022): a logistic regression (L-BFGS, to
    convergence, inverse regularisation `cfg.probe_C`) on the frozen network's pooled
    features, written into the network's head, so fine-tuning starts from a head that
    already fits instead of a random one. Returns the feature cache's status."""
    pooled, status = pooled_features(cfg, spec, model, store)
    head = fit_head("logreg", pooled(x), y.cpu().numpy(), C=cfg.probe_C, seed=cfg.seed)
    layer = spec.head_module(model)
    weight, bias = linear_layer(head, layer.weight.shape[0])  # a Linear or a 1x1 Conv2d
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight).reshape(layer.weight.shape))
        layer.bias.copy_(torch.from_numpy(bias))
    return status
