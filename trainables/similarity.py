"""How similar a target is to the source, seen through the pretrained network's features.

The domain similarity of Cui et al. 2018 ("Large Scale Fine-Grained Categorization and
Domain-Specific Transfer Learning", CVPR, section 4.1): each domain is the set of its
classes' mean features (the penultimate layer, the head's input), each class weighted by
its share of the domain's images; the Earth Mover's Distance between the two sets, with
Euclidean ground distance, gives

    similarity = exp(-gamma * EMD)

Cui et al. fix gamma = 0.01 for their Inception-v3 features. Features of other networks
live on other scales, so gamma here is the reciprocal of the source's own spread: the mean
distance between two source class means. A target whose classes sit, in feature space,
as far from the source's as two source classes sit from each other scores exp(-1) = 0.37;
a target made of the source's own classes scores near 1; the number is comparable across
architectures and targets of a study.

Torch and scipy only (no store): the driver calls it once per (target, architecture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from trainables.datasets.base import IMAGE_SIZE, normalise
from trainables.features import capture
from trainables.glyphs import LETTERS, render_glyphs
from trainables.registry import ArchSpec
from trainables.weights import build_for_target

SOURCE_PER_CLASS = 40  # source images per class rendered for the measure (fresh renders)
SOURCE_SEED = 7919  # not a pretraining seed: other renders than the network learned from


@dataclass(frozen=True)
class Similarity:
    similarity: float  # exp(-gamma * EMD), in (0, 1]
    emd: float  # between class-mean features, Euclidean ground distance
    gamma: float  # 1 / mean distance between two source class means


def class_means(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean feature per class present, that class's share of the images)."""
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    counts = np.array([(labels == c).sum() for c in classes], dtype=np.float64)
    return means.astype(np.float64), counts / counts.sum()


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1), 0.0))


def earth_movers_distance(
    a: np.ndarray, weights_a: np.ndarray, b: np.ndarray, weights_b: np.ndarray
) -> float:
    """The exact EMD between two weighted point sets (weights summing to 1): the
    transport problem as a linear program (scipy's HiGHS), flows f_ij >= 0 with
    row sums weights_a and column sums weights_b, minimising sum f_ij d_ij."""
    from scipy.optimize import linprog

    cost = distances(a, b)
    n, m = cost.shape
    rows = np.kron(np.eye(n), np.ones((1, m)))  # sum_j f_ij = weights_a[i]
    columns = np.kron(np.ones((1, n)), np.eye(m))  # sum_i f_ij = weights_b[j]
    solved = linprog(
        cost.ravel(),
        A_eq=np.vstack([rows, columns]),
        b_eq=np.concatenate([weights_a, weights_b]),
        bounds=(0, None),
        method="highs",
    )
    if not solved.success:
        raise RuntimeError(f"EMD: the transport problem did not solve ({solved.message})")
    return float(solved.fun)


def spread(means: np.ndarray) -> float:
    """The mean distance between two different class means."""
    d = distances(means, means)
    n = len(means)
    return float(d.sum() / (n * (n - 1))) if n > 1 else 1.0


def domain_similarity(source: tuple, target: tuple) -> Similarity:
    """Cui et al.'s similarity between two (features, labels) pairs (see the module doc)."""
    source_means, source_weights = class_means(*source)
    target_means, target_weights = class_means(*target)
    emd = earth_movers_distance(source_means, source_weights, target_means, target_weights)
    gamma = 1.0 / max(spread(source_means), 1e-12)
    return Similarity(math.exp(-gamma * emd), emd, gamma)


@torch.no_grad()
def penultimate(model: torch.nn.Module, spec: ArchSpec, x: torch.Tensor) -> np.ndarray:
    """The head's input for `x`, flattened per image (eval mode)."""
    features = capture(model, spec.head_module(model), x, inputs=True)
    return features.flatten(1).double().numpy()


def source_sample(per_class: int = SOURCE_PER_CLASS) -> tuple[torch.Tensor, np.ndarray]:
    """Fresh renders of the source task (glyphs), preprocessed as for pretraining."""
    images, labels = render_glyphs(per_class * len(LETTERS), SOURCE_SEED, IMAGE_SIZE)
    return torch.from_numpy(normalise(images)), labels


def measure(spec: ArchSpec, state: dict, target, source=None) -> Similarity:
    """The similarity of `target` (a TargetData: its training pool) to the glyph source,
    in the features of the network `spec` with the pretrained `state`; `source`: a
    source_sample() to reuse across targets."""
    torch.manual_seed(0)  # the heads are replaced (and never used): keep builds identical
    source_x, source_y = source if source is not None else source_sample()
    source_classes = state[f"{spec.head}.weight"].shape[0]
    source_channels = state[f"{spec.first_conv}.weight"].shape[1]
    source_model = spec.build(source_classes, source_channels)
    source_model.load_state_dict(state)
    target_model = build_for_target(
        spec, "study:glyphs", target.num_classes, target.in_channels, state
    )
    target_x, target_y = target.pool.tensors()
    return domain_similarity(
        (penultimate(source_model, spec, source_x), source_y),
        (penultimate(target_model, spec, target_x), target_y.numpy()),
    )
