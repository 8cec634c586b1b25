"""The raced decision of a (target, size) (study.answer.decision): the paired tests, the
alpha spent over looks, the verdicts, the drops and their reasons, the recommendation, and
the error rates of small simulated races (the full run: bench/decision_errors.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.decision_errors import Noise, simulate
from study.answer.decision import (
    CLEAR_WINNER,
    EQUIVALENT,
    UNDECIDED,
    Candidate,
    Decision,
    Looks,
    decide,
    levels,
    race,
    recommend,
    shown_equivalent,
    shown_worse,
)
from study.answer.pooled import residual_variance


def accuracies(mean: float, seeds: int, sd: float, rng, shared=None) -> dict[int, float]:
    """seed -> accuracy: `mean` + the seeds' shared subset effects + own noise of SD `sd`."""
    shared = np.zeros(seeds) if shared is None else shared
    own = rng.normal(0, sd, seeds)
    return {s: float(mean + shared[s] + own[s]) for s in range(seeds)}


@pytest.mark.parametrize("seeds", [(2, 3, 5), (3, 5, 8), (2, 4, 6, 8, 10, 20)])
@pytest.mark.parametrize("spending", ["obrien-fleming", "bonferroni"])
def test_the_alpha_spent_over_the_looks_sums_to_at_most_alpha(seeds, spending):
    looks = Looks(seeds, alpha=0.05, spending=spending)
    spent = [looks.level(k) for k in range(len(seeds))]
    assert all(level > 0 for level in spent)
    assert sum(spent) <= 0.05 + 1e-12
    assert math.isclose(sum(spent), 0.05)
    # at each look the drop, winner and equivalence tests share no more than the level
    for k in range(len(seeds)):
        share = levels(looks, k, contenders=20, out=0)
        assert share["drop"] * 19 + share["winner"] <= spent[k] + 1e-15
        assert share["drop"] * 19 + share["equivalent"] <= spent[k] + 1e-15
    if spending == "obrien-fleming":  # little is spent early, where few seeds decide little
        assert spent[0] < spent[-1] / 10


@pytest.mark.parametrize("seeds", [(1, 3), (3, 3, 5), (5, 3), ()])
def test_looks_need_two_seeds_first_and_strictly_more_at_each_look(seeds):
    with pytest.raises(ValueError):
        Looks(seeds)


def test_two_identical_contenders_come_out_equivalent_with_enough_seeds():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.035, 40)
    a = accuracies(0.7, 40, 0.005, rng, shared)
    b = accuracies(0.7, 40, 0.005, rng, shared)
    assert shown_equivalent(a, b, margin=0.02, level=0.025)
    assert not shown_equivalent({s: a[s] for s in range(2)}, b, margin=0.02, level=0.025)
    decision = decide({"a": a, "b": b}, {"a", "b"}, 0, Looks((40,)), margin=0.02)
    assert decision.verdict == EQUIVALENT and set(decision.survivors) == {"a", "b"}


def test_with_no_spread_the_exact_sign_test_decides_and_only_with_enough_seeds():
    same = {s: 0.5 + 0.01 * s for s in range(10)}
    assert shown_equivalent(same, dict(same), margin=0.02, level=0.001)  # 0.5^10 <= 0.001
    assert not shown_equivalent(dict(list(same.items())[:5]), same, 0.02, 0.001)
    lower = {s: v - 0.003 for s, v in same.items()}  # 0.3 points below on every seed
    assert shown_worse(lower, same, level=0.001) and not shown_worse(same, lower, 0.001)
    three = {s: same[s] for s in range(3)}
    assert not shown_worse({s: lower[s] for s in range(3)}, three, level=0.05)  # 0.5^3 > 0.05


def test_contenders_five_points_apart_are_never_equivalent():
    rng = np.random.default_rng(1)
    for seeds in (3, 8, 30, 200):
        for sd in (0.0, 0.001, 0.02):
            shared = rng.normal(0, 0.035, seeds)
            a = accuracies(0.70, seeds, sd, rng, shared)
            b = accuracies(0.75, seeds, sd, rng, shared)
            assert not shown_equivalent(a, b, margin=0.02, level=0.025)
            decision = decide({"a": a, "b": b}, {"a", "b"}, 0, Looks((seeds,)), 0.02)
            assert decision.verdict != EQUIVALENT


def test_a_clearly_worse_contender_is_dropped_with_its_reason():
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 0.035, 8)
    per_seed = {
        "cnn4 finetune": accuracies(0.80, 8, 0.01, rng, shared),
        "cnn4 freeze-2": accuracies(0.80, 8, 0.01, rng, shared),
        "cnn4 scratch": accuracies(0.55, 8, 0.01, rng, shared),
    }
    per_seed["cnn4 scratch"][99] = 0.99  # a seed the others lack: not counted
    decision = decide(per_seed, set(per_seed), 2, Looks((3, 5, 8)), margin=0.02)
    assert [d.name for d in decision.drops] == ["cnn4 scratch"]
    assert "cnn4 scratch" not in decision.survivors and decision.seeds == 8
    drop = decision.drops[0]
    assert drop.versus == decision.best and drop.interval[1] < 0 < drop.level
    assert math.isclose(drop.mean, -0.25, abs_tol=0.03)
    assert "shown worse than" in drop.reason and "paired t" in drop.reason
    assert "look 3 (8 seeds)" in drop.reason


def test_undecided_says_how_many_seeds_would_likely_decide_or_none():
    rng = np.random.default_rng(3)
    shared = rng.normal(0, 0.035, 3)
    per_seed = {"a": accuracies(0.74, 3, 0.02, rng, shared)}
    per_seed["b"] = accuracies(0.70, 3, 0.02, rng, shared)
    decision = decide(per_seed, set(per_seed), 0, Looks((3, 5, 8)), margin=0.01)
    assert decision.verdict == UNDECIDED and 3 < decision.seeds_needed <= 1000
    # a tie at the top and a third contender beyond the margin: no route decides
    top = {s: 0.8 + 0.01 * (-1) ** s for s in range(4)}
    tie = {s: 0.8 - 0.01 * (-1) ** s for s in range(4)}
    far = {s: 0.7 + 0.02 * (-1) ** s for s in range(4)}
    per_seed = {"top": top, "tie": tie, "far": far}
    decision = decide(per_seed, set(per_seed), 0, Looks((4, 8)), margin=0.02)
    assert decision.verdict == UNDECIDED and decision.seeds_needed is None
    assert "over 1000 seeds" in recommend([], decision)[1]


def test_a_race_stops_once_decided_and_spends_fewer_trials():
    means = {"best": 0.9, "mid": 0.6, "low": 0.3}
    rng = np.random.default_rng(4)
    noise = {(c, s): rng.normal(0, 0.005) for c in means for s in range(20)}
    result = race(lambda c, s: means[c] + noise[c, s], list(means), Looks((4, 8, 20)), 0.02)
    assert result.decision.verdict == CLEAR_WINNER and result.decision.best == "best"
    assert result.trials < result.fixed_trials == 60
    assert len(result.drops) == result.decision.look + 1


def equivalent(survivors, best, drops=()) -> Decision:
    return Decision(EQUIVALENT, best, tuple(survivors), drops, 2, 8, {}, margin=0.02)


def test_the_recommendation_is_the_cheapest_equivalent_one_never_a_dropped_one():
    candidates = [
        Candidate("cnn4 finetune", 98_682, 30.0),
        Candidate("cnn4 freeze-2", 2_314, 20.0),
        Candidate("cnn4 freeze-3", 2_314, 12.0),
        Candidate("cnn4 linear-probe", 650, 5.0),  # dropped: never recommended
    ]
    decision = equivalent(["cnn4 finetune", "cnn4 freeze-2", "cnn4 freeze-3"], "cnn4 finetune")
    name, reason = recommend(candidates, decision)
    assert name == "cnn4 freeze-3"  # fewest parameters, then the faster of the two
    assert "2,314 trainable parameters against 98,682" in reason and "2 points" in reason
    tie = equivalent(["cnn4 freeze-2", "cnn4 freeze-3"], "cnn4 freeze-2")
    name, reason = recommend(candidates, tie)
    assert name == "cnn4 freeze-3" and "12 s against 20 s" in reason
    winner = Decision(CLEAR_WINNER, "cnn4 finetune", ("cnn4 finetune",), (), 1, 5, {}, 0.02)
    assert recommend(candidates, winner)[0] == "cnn4 finetune"
    undecided = Decision(UNDECIDED, "cnn4 finetune", ("a", "b"), (), 2, 8, {}, 0.02, 14)
    assert recommend(candidates, undecided) == (
        None,
        "undecided after 8 seeds: about 14 seeds would likely decide",
    )


@pytest.mark.parametrize("paired_sd", [0.025, 0.008])
@pytest.mark.parametrize("truth", ["all equal", "one better", "boundary", "two tied"])
def test_simulated_error_rates_stay_within_alpha(truth, paired_sd):
    """A few hundred races per truth (bench/decision_errors.py runs thousands): wrong clear
    winners and wrong equivalents at most alpha + 3 simulation SEs."""
    rng = np.random.default_rng(5)
    noise = Noise(paired_sd=paired_sd)
    tally = simulate(truth, Looks((3, 5, 8)), 0.02, 150, rng, contenders=20, noise=noise)
    for count in (tally.wrong_winner, tally.wrong_equivalent):
        rate, se = tally.rate(count)
        assert rate <= 0.05 + 3 * max(se, math.sqrt(0.05 * 0.95 / tally.studies))
    assert tally.trials <= tally.fixed_trials


def test_the_pooled_noise_is_the_two_way_residual_variance_with_its_degrees_of_freedom():
    rng = np.random.default_rng(6)
    shared = rng.normal(0, 0.035, 6)
    two = {"a": accuracies(0.7, 6, 0.01, rng, shared), "b": accuracies(0.7, 6, 0.01, rng, shared)}
    s2, df = residual_variance(two)  # two contenders: half the paired differences' variance
    diffs = [two["a"][s] - two["b"][s] for s in range(6)]
    assert df == 5 and math.isclose(2 * s2, float(np.var(diffs, ddof=1)))
    shared = rng.normal(0, 0.035, 40)
    many = {f"c{i}": accuracies(0.7 + 0.01 * i, 40, 0.01, rng, shared) for i in range(10)}
    s2, df = residual_variance(many)  # the shared subset effects and the means are removed
    assert df == 9 * 39 and 0.7 < math.sqrt(s2) / 0.01 < 1.3
    many["c0"] = {s: many["c0"][s] for s in range(3)}  # dropped after 3 seeds: fewer df
    assert residual_variance(many)[1] == 9 * 39 - 37
    assert math.isnan(residual_variance({"a": {0: 0.5}, "b": {0: 0.6}})[0])


def test_pooled_looks_drop_on_three_seeds_what_one_pair_cannot():
    rng = np.random.default_rng(7)
    shared = rng.normal(0, 0.035, 3)
    per_seed = {f"c{i:02d}": accuracies(0.70, 3, 0.02, rng, shared) for i in range(19)}
    per_seed["low"] = accuracies(0.62, 3, 0.02, rng, shared)
    plain = decide(per_seed, set(per_seed), 1, Looks((2, 3)), margin=0.02)
    pooled = decide(per_seed, set(per_seed), 1, Looks((2, 3), pooled=True), margin=0.02)
    assert not plain.drops  # on the pair's 2 df: t's quantile at the drop level is ~30
    assert [d.name for d in pooled.drops] == ["low"] and "pooled t" in pooled.drops[0].reason


@pytest.mark.parametrize("paired_sd", [0.025, 0.008])
@pytest.mark.parametrize("truth", ["all equal", "one better", "boundary", "two tied"])
def test_pooled_simulated_error_rates_stay_within_alpha(truth, paired_sd):
    """Pooled noise, a fourth look at 12 seeds: a few hundred races per truth, wrong clear
    winners and wrong equivalents at most alpha + 3 simulation SEs."""
    rng = np.random.default_rng(8)
    looks = Looks((3, 5, 8, 12), pooled=True)
    tally = simulate(truth, looks, 0.02, 300, rng, contenders=20, noise=Noise(paired_sd=paired_sd))
    for count in (tally.wrong_winner, tally.wrong_equivalent):
        rate, se = tally.rate(count)
        assert rate <= 0.05 + 3 * max(se, math.sqrt(0.05 * 0.95 / tally.studies))
    if truth == "one better":  # the power pooling buys: decided on at most 12 seeds
        assert tally.verdicts.get(CLEAR_WINNER, 0) >= 0.9 * tally.studies
