"""Classical heads on frozen pooled features: logistic regression, linear SVM, k-NN.

The lecture's "replace the fully connected head by an SVM or k-NN": the whole backbone is
frozen, every image becomes the vector the network's own head would receive (its pooled,
flattened penultimate features, from the feature cache), and a scikit-learn estimator is
fitted on those. Logistic regression and the SVM see standardised features (their C is
comparable across architectures); k-NN uses the raw features with the chosen metric.
The same logistic regression is lp-ft's linear probe (`linear_layer`): folded into the
network's own head, it is where lp-ft's fine-tuning starts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from search_spaces.strategies import KNN_METRICS


@dataclass(frozen=True)
class ClassicalHead:
    """A fitted estimator and what it cost."""

    strategy: str
    estimator: object
    params: int  # learned numbers (k-NN: none; it stores the training set)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.estimator.predict(features)

    def accuracy(self, features: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.predict(features) == labels))


def make_estimator(strategy: str, C: float, k: int, metric: str, n_train: int, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if strategy == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    if strategy == "svm":
        return make_pipeline(
            StandardScaler(), LinearSVC(C=C, max_iter=5000, random_state=seed, dual="auto")
        )
    if strategy == "knn":
        if metric not in KNN_METRICS:
            raise ValueError(f"knn metric must be one of {', '.join(KNN_METRICS)}, got {metric!r}")
        # k can exceed a tiny training set (1 example per class): use them all then.
        return KNeighborsClassifier(n_neighbors=min(k, n_train), metric=metric, algorithm="brute")
    raise ValueError(f"unknown classical head {strategy!r}; allowed: logreg, svm, knn")


def fit_head(
    strategy: str,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    C: float = 1.0,
    k: int = 5,
    metric: str = "euclidean",
    seed: int = 0,
) -> ClassicalHead:
    estimator = make_estimator(strategy, C, k, metric, len(labels), seed)
    with warnings.catch_warnings():
        # A capped iteration count on tiny subsets is expected; the score says how it went.
        warnings.simplefilter("ignore")
        estimator.fit(features, labels)
    linear = estimator[-1] if strategy in ("logreg", "svm") else None
    params = 0 if linear is None else int(linear.coef_.size + linear.intercept_.size)
    return ClassicalHead(strategy, estimator, params)


def linear_layer(head: ClassicalHead, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted `logreg` head as the weight (num_classes, features) and bias of a linear
    layer on the raw features, giving the same predictions: the standardisation is folded
    in (w / scale, b - w . mean / scale), and a 2-class fit's single score s becomes the
    logits (-s/2, s/2), whose softmax is the fit's sigmoid."""
    if head.strategy != "logreg":
        raise ValueError(f"only a logreg head is a linear layer, got {head.strategy}")
    scaler, logistic = head.estimator[0], head.estimator[-1]
    weight = logistic.coef_ / scaler.scale_
    bias = logistic.intercept_ - weight @ scaler.mean_
    if len(logistic.classes_) != num_classes:
        raise ValueError(
            f"the probe saw {len(logistic.classes_)} of the {num_classes} classes: every "
            "class needs a training example"
        )
    if num_classes == 2:
        weight, bias = np.concatenate([-weight, weight]) / 2, np.concatenate([-bias, bias]) / 2
    return weight.astype(np.float32), bias.astype(np.float32)
