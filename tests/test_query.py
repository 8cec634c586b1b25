from __future__ import annotations

from study.query import best_per_size
from study.report import best_freeze_table


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
    assert [a["size"] for a in answer] == ["2", "10", "all"]
    ten = answer[1]
    assert ten["best"]["strategy"] == "scratch" and abs(ten["best"]["test_acc"] - 0.92) < 1e-9
    assert ten["runner_up"]["strategy"] == "freeze-2" and ten["best"]["seeds"] == 2
    assert answer[0]["best"]["arch"] == "resnet18"
    assert answer[2]["runner_up"] is None
    table = best_freeze_table(answer)
    assert "resnet18 freeze-2" in table and "0.920 [0.666, 1.174]" in table
    assert ten["clear_winner"] is False and "no clear winner" in table
    assert answer[0]["clear_winner"] is None  # one seed each: no interval to compare


def test_a_clear_winner_needs_disjoint_intervals():
    rows = [row("5", "freeze-2", acc, seed) for seed, acc in enumerate([0.90, 0.91, 0.92])]
    rows += [row("5", "scratch", acc, seed) for seed, acc in enumerate([0.70, 0.71, 0.72])]
    (five,) = best_per_size(rows)
    assert five["clear_winner"] is True
    low, high = five["best"]["ci95"]
    assert low < 0.91 < high and high - low < 0.1
