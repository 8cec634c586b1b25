from __future__ import annotations

from study.answer.model import Answer
from study.answer.query import best_per_size
from study.answer.report import best_freeze_table, ranking_table


def row(size, strategy, acc, seed, arch="lenet5"):
    return {
        "dataset": "digits",
        "size": size,
        "seed": seed,
        "arch": arch,
        "strategy": strategy,
        "freeze_frac": 0.5,
        "test_acc": acc,
    }


def test_best_and_runner_up_by_mean_over_seeds_sizes_in_numeric_order():
    rows = [
        row("10", "scratch", 0.90, 0),
        row("10", "scratch", 0.94, 1),
        row("10", "freeze-2", 0.95, 0),
        row("10", "freeze-2", 0.85, 1),
        row("all", "finetune", 0.99, 0),
        row("2", "linear-probe", 0.6, 0),
        row("2", "freeze-2", 0.7, 0, arch="resnet18"),
    ]
    answer = best_per_size(rows)
    assert [a.size for a in answer] == ["2", "10", "all"]
    ten = answer[1]
    assert ten.best.strategy == "scratch" and abs(ten.best.test_acc - 0.92) < 1e-9
    assert ten.runner_up.strategy == "freeze-2" and ten.best.seeds == 2
    assert answer[0].best.arch == "resnet18"
    assert answer[2].runner_up is None
    table = best_freeze_table(answer)
    assert "resnet18 freeze-2" in table and "0.920 [0.666, 1.174]" in table
    assert ten.clear_winner is False and "no clear winner" in table
    assert answer[0].clear_winner is None  # one seed each: no interval to compare


def test_a_clear_winner_needs_disjoint_intervals():
    rows = [row("5", "freeze-2", acc, seed) for seed, acc in enumerate([0.90, 0.91, 0.92])]
    rows += [row("5", "scratch", acc, seed) for seed, acc in enumerate([0.70, 0.71, 0.72])]
    (five,) = best_per_size(rows)
    assert five.clear_winner is True
    low, high = five.best.ci95
    assert low < 0.91 < high and high - low < 0.1


def test_paired_verdict_is_clear_when_one_strategy_wins_on_every_seed_by_a_little():
    """Subsets differ a lot in difficulty (the seed-to-seed spread, shared by both
    strategies), the winner is ahead by 1-2 points on every one of them: the unpaired
    intervals overlap, the paired interval of the difference excludes 0."""
    hardness = [0.62, 0.80, 0.70, 0.88, 0.75]
    margins = [0.012, 0.018, 0.010, 0.016, 0.014]
    rows = [
        row("1", "freeze-2", h + m, seed)
        for seed, (h, m) in enumerate(zip(hardness, margins, strict=True))
    ]
    rows += [row("1", "finetune", h, seed) for seed, h in enumerate(hardness)]
    (one,) = best_per_size(rows)
    best, runner_up = one.best, one.runner_up
    assert best.strategy == "freeze-2"
    assert best.ci95[0] < runner_up.ci95[1]  # unpaired: the intervals overlap
    assert one.clear_winner is True  # paired: clear
    low, high = runner_up.vs_best.ci95  # runner-up - best, seed by seed
    assert high < 0 and abs(runner_up.vs_best.diff + 0.014) < 1e-9
    assert one.top_group == ["lenet5 freeze-2"]
    assert "clear winner" in best_freeze_table(Answer((one,)))


def test_no_difference_is_never_called_clear_and_both_stay_in_the_top_group():
    noise = [0.01, -0.02, 0.015, -0.005, 0.0]
    rows = [row("5", "freeze-1", 0.9 + n, seed) for seed, n in enumerate(noise)]
    rows += [row("5", "freeze-3", 0.9 - n, seed) for seed, n in enumerate(noise)]
    rows += [row("5", "scratch", 0.5 + n / 10, seed) for seed, n in enumerate(noise)]
    (five,) = best_per_size(rows)
    assert five.clear_winner is False
    assert set(five.top_group) == {"lenet5 freeze-1", "lenet5 freeze-3"}
    scratch = next(e for e in five.ranking if e.strategy == "scratch")
    assert scratch.top_group is False and scratch.vs_best.p_holm < 0.05
    assert set(scratch.per_seed) == {"0", "1", "2", "3", "4"}


def test_holm_adjusts_step_down_and_stays_monotone():
    from study.answer.paired import holm

    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5]) == [0.5]


def test_pretraining_gain_pairs_the_best_pretrained_with_the_best_scratch_seed_by_seed():
    rows = []
    for seed, hard in enumerate([0.50, 0.62, 0.55]):
        rows.append({**row("1", "scratch", hard, seed), "family": "scratch"})
        rows.append({**row("1", "scratch", hard - 0.05, seed, arch="cnn4"), "family": "scratch"})
        rows.append({**row("1", "freeze-2", hard + 0.12, seed), "family": "freeze-b"})
    (one,) = best_per_size(rows)
    gain = one.pretraining_gain
    assert gain.pretrained == "lenet5 freeze-2" and gain.scratch == "lenet5 scratch"
    assert abs(gain.diff - 0.12) < 1e-9 and gain.clear is True
    assert "+0.120" in best_freeze_table(Answer((one,)))


def test_of_a_labels_candidates_the_best_mean_validation_accuracy_answers_never_test():
    """Candidate 2 is better on validation over the seeds (though worse on seed 0, where
    the search chose candidate 1) and worse on test: the label's answer is candidate 2's
    test accuracies. A candidate with a lost seed loses to one with every seed."""
    vals = {1: [0.80, 0.60, 0.61], 2: [0.78, 0.70, 0.71], 3: [0.99, 0.99]}
    tests = {1: [0.90, 0.90, 0.90], 2: [0.70, 0.72, 0.74], 3: [0.99, 0.99]}
    rows = [
        {**row("1", "finetune", test, seed), "candidate": number, "val_acc": val}
        for number in vals
        for seed, (val, test) in enumerate(zip(vals[number], tests[number], strict=True))
    ]
    (one,) = best_per_size(rows)
    best = one.best
    assert best.candidate == 2 and best.per_seed == {"0": 0.70, "1": 0.72, "2": 0.74}
    assert abs(best.test_acc - 0.72) < 1e-9 and best.seeds == 3
    assert set(best.candidates_val_acc) == {"1", "2", "3"}
    assert "2 of 3 (0.730)" in ranking_table(Answer((one,)))  # `best-freeze --all` says which
    # Rows without candidates (a study from before them) are each label's only one.
    (old,) = best_per_size([row("1", "finetune", 0.5, seed) for seed in range(2)])
    assert old.best.candidate == 1 and old.best.seeds == 2
