"""The pooled paired noise of a race's contenders (study.answer.decision, Looks(pooled=True)).

Two-way additive layout, contenders x seeds: acc[c, s] = mu_c + subset_s + e[c, s], the e
independent with one variance s2 for every contender. Least squares over every accuracy of the
race (the dropped contenders' too, on the seeds they got: an unbalanced layout) leaves a
residual variance on N - rank degrees of freedom (K contenders on n seeds each: (K - 1)(n - 1));
the SE of a paired difference of two contenders' means over the same n seeds is sqrt(2 s2 / n),
and the t of each such difference has those degrees of freedom in place of n - 1 (19 x 2 = 38
for 20 contenders on 3 seeds, against 2). Exact under normal e: such a difference (each of the
two has exactly those seeds) is a contrast of the fitted values, independent of the residuals.
Valid when the contenders' noise is alike; with unequal noise the noisy pairs' SE is too small
(bench/decision_errors.py --unequal shows what it costs).
"""

from __future__ import annotations

import numpy as np


def residual_variance(per_seed: dict[str, dict[int, float]]) -> tuple[float, int]:
    """s2 and its degrees of freedom from every (contender, seed) accuracy, the additive
    contender + seed model fitted by least squares; (nan, 0) with no degree of freedom."""
    cells = [(c, s, acc) for c, accs in sorted(per_seed.items()) for s, acc in accs.items()]
    names = {c: i for i, c in enumerate(sorted({c for c, _, _ in cells}))}
    seeds = {s: i for i, s in enumerate(sorted({s for _, s, _ in cells}), len(names))}
    design = np.zeros((len(cells), len(names) + len(seeds)))
    for row, (c, s, _) in enumerate(cells):
        design[row, names[c]] = design[row, seeds[s]] = 1.0
    y = np.array([acc for _, _, acc in cells], dtype=float)
    fit, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    df = len(cells) - rank
    if df < 1:
        return float("nan"), 0
    return float(((y - design @ fit) ** 2).sum() / df), int(df)
