"""The typed answer (study.answer.model): its JSON keeps the layout the dict answer had
(report/best_freeze.json, `study best-freeze --format json`), and a strategy registered
in search_spaces.strategies, nothing else edited, reaches every part of the answer: the
JSON, both tables, the Markdown, the pictures, the pretraining gain and the best freeze
fraction. No Ray, no training: confirm rows are made up in study_confirm_rows' shape."""

from __future__ import annotations

import json

import pytest

from search_spaces import strategies
from search_spaces.strategies import (
    FREEZE_NONE,
    FREEZE_SEARCHED,
    Phase,
    StrategySpec,
    get_strategy,
    list_strategies,
    one_phase,
    register,
    strategy_label,
)
from study.answer import plots
from study.answer.descriptions import answer_markdown
from study.answer.model import Answer
from study.answer.query import best_per_size, strategy_family
from study.answer.report import best_freeze_table, ranking_table
from study.answer.similarity import attach_similarity
from trainables.contract import TrialConfig

STAGES = 4  # lenet5's


def confirm_row(strategy: str, freeze: int, seed: int, test_acc: float, size: str = "2"):
    """A finished confirm trial, as study_confirm_rows reads it back from MLflow."""
    return {
        "target": "near",
        "dataset": "digits",
        "size": size,
        "seed": seed,
        "arch": "lenet5",
        "strategy": strategy_label(strategy, freeze),
        "family": strategy_family(strategy),
        "freeze": freeze,
        "freeze_frac": freeze / STAGES,
        "candidate": 1,
        "val_acc": test_acc - 0.125,
        "test_acc": test_acc,
    }


def registered_rows(seeds=(0, 1, 2)) -> list[dict]:
    """scratch, finetune, freeze-b at 1..3, linear-probe and knn, each a bit apart."""
    plan = {"scratch": [0], "finetune": [0], "freeze-b": [1, 2, 3], "linear-probe": [4]}
    plan["knn"] = [4]
    rows = []
    for number, (strategy, boundaries) in enumerate(plan.items()):
        for freeze in boundaries:
            for seed in seeds:
                acc = 0.5 + 0.05 * number + 0.01 * freeze + 0.02 * seed
                rows.append(confirm_row(strategy, freeze, seed, acc))
    return rows


def warm_then_cool(cfg: TrialConfig, num_stages: int) -> list[Phase]:
    """Half the steps at `lr`, the rest at a tenth of it, at the label's boundary."""
    warm = cfg.steps // 2
    return [
        Phase("warm", warm, cfg.freeze, cfg.lr, cfg.backbone_lr_mult, cfg.layer_decay),
        Phase("cool", cfg.steps - warm, cfg.freeze, cfg.lr / 10, 1.0, 1.0),
    ]


@pytest.fixture
def registry(monkeypatch):
    """The registry as it is, put back after the test (tests/test_strategy_registry.py)."""
    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies._REGISTRY))


@pytest.fixture
def cool_b(registry):
    """`cool-b`: a searched boundary (labels cool-1..cool-3) with a phase plan of its own."""
    return register(StrategySpec("cool-b", FREEZE_SEARCHED, warm_then_cool, backbone_lr=True))


def cool_answer() -> Answer:
    """cool-b wins at every boundary; cool-2 is the best of all, on every seed."""
    rows = registered_rows()
    for freeze, ahead in ((1, 0.30), (2, 0.40), (3, 0.20)):
        rows += [confirm_row("cool-b", freeze, s, 0.5 + ahead + 0.02 * s) for s in (0, 1, 2)]
    return attach_similarity(best_per_size(rows), {"near": {"lenet5": 0.75}})


def drawn(draw, answer: Answer, monkeypatch, tmp_path) -> dict[str, tuple[list, list]]:
    """Every labelled line of the picture `draw` (plots.boundary_figure, ...) saves: its
    data by label; a label is drawn when it is in the legend too."""
    from matplotlib.figure import Figure

    seen: dict[str, tuple[list, list]] = {}

    def capture(figure, path, **kwargs) -> None:
        for axes in figure.axes:
            legend = axes.get_legend()
            shown = {text.get_text() for text in legend.get_texts()} if legend else set()
            for line in axes.get_lines():
                if line.get_label() in shown:
                    data = (list(line.get_xdata()), list(line.get_ydata()))
                    seen[line.get_label()] = data

    monkeypatch.setattr(Figure, "savefig", capture)
    draw(answer, tmp_path / "picture.png")
    return seen


def test_the_registry_says_what_the_answer_hard_coded_before():
    def having(flag: str) -> list[str]:
        return [name for name in list_strategies() if getattr(get_strategy(name), flag)]

    assert having("fixed_boundary") == ["finetune", "freeze-b", "linear-probe"]
    assert having("from_scratch") == ["scratch"]
    assert len({get_strategy(name).sweep for name in having("fixed_boundary")}) == 1
    assert {get_strategy(name).family_title for name in list_strategies()} == {
        "scratch", "finetune", "freeze-b (best b)", "linear-probe", "lp-ft",
        "classical head (best)",
    }  # fmt: skip
    assert {get_strategy(name).family for name in ("logreg", "svm", "knn")} == {"classical head"}


def test_a_registered_strategy_is_in_the_json_and_the_paired_answers(cool_b):
    assert list_strategies()[-1] == "cool-b"
    answer = cool_answer()
    (item,) = json.loads(answer.to_json())
    assert item["best"]["strategy"] == "cool-2" and item["best"]["family"] == "cool-b"
    assert item["runner_up"]["strategy"] == "cool-1"
    assert {"cool-1", "cool-2", "cool-3"} <= {e["strategy"] for e in item["ranking"]}
    # Pretrained: its gain over scratch is the source task's worth; fixed boundary: b/B.
    assert item["pretraining_gain"]["pretrained"] == "lenet5 cool-2"
    assert item["best_freeze_fraction"]["best"] == "lenet5 cool-2"
    assert item["best_freeze_fraction"]["freeze_frac"] == 0.5
    assert answer.to_dicts() == json.loads(answer.to_json())


def test_a_registered_strategy_is_in_both_tables_and_the_markdown(cool_b):
    answer = cool_answer()
    table = best_freeze_table(answer)
    assert "lenet5 cool-2" in table.splitlines()[2] and "lenet5 cool-1" in table
    ranked = [line.split()[3:5] for line in ranking_table(answer).splitlines()[2:]]
    assert ranked[:2] == [["lenet5", "cool-2"], ["lenet5", "cool-1"]]
    assert ["lenet5", "cool-3"] in ranked
    markdown = answer_markdown(answer, "s", {}, {})
    assert "| near | 2 | lenet5 cool-2 |" in markdown
    assert "- near, 2 per class: lenet5 cool-2" in markdown


def test_a_registered_strategy_is_drawn_by_boundary_and_by_size(cool_b, monkeypatch, tmp_path):
    answer = cool_answer()
    cool = {e.freeze: e.test_acc for e in answer[0].ranking if e.family == "cool-b"}
    by_boundary = drawn(plots.boundary_figure, answer, monkeypatch, tmp_path)
    # A line of its own (another phase plan: not the fine-tune/freeze/probe sweep's).
    assert by_boundary["2/class, cool-b"] == ([1, 2, 3], [cool[1], cool[2], cool[3]])
    plain = by_boundary["2/class, finetune/freeze-b/linear-probe"]
    assert plain[0] == [0, 1, 2, 3, 4]
    by_size = drawn(plots.size_figure, answer, monkeypatch, tmp_path)
    assert by_size["cool-b (best b)"] == ([2.0], [cool[2]])
    assert {"freeze-b (best b)", "classical head (best)", "scratch"} <= set(by_size)


def test_registered_strategies_alone_draw_one_line_per_size_labelled_as_before(
    monkeypatch, tmp_path
):
    answer = best_per_size(registered_rows())
    assert set(drawn(plots.boundary_figure, answer, monkeypatch, tmp_path)) == {"2/class"}


def test_a_registered_strategy_without_source_weights_is_the_scratch_baseline(registry):
    register(StrategySpec("scratch-long", FREEZE_NONE, one_phase, needs_weights=False))
    rows = [r for r in registered_rows() if r["strategy"] != "scratch"]
    rows += [confirm_row("scratch-long", 0, s, 0.3 + 0.02 * s) for s in (0, 1, 2)]
    (item,) = best_per_size(rows)
    assert item.pretraining_gain.scratch == "lenet5 scratch-long"
    fixed = {e.strategy for e in item.ranking if e.fixed_boundary}
    assert fixed == {"finetune", "freeze-1", "freeze-2", "freeze-3", "linear-probe"}


# The layout pinned: what the answer of sample_rows() was as dicts, before it was typed.


def sample_rows() -> list[dict]:
    accs = {  # label: (family, freeze, freeze_frac, per-seed test accuracies)
        "scratch": ("scratch", 0, 0.0, [0.5, 0.625, 0.75]),
        "finetune": ("finetune", 0, 0.0, [0.75, 0.875, 0.8125]),
        "freeze-2": ("freeze-b", 2, 0.5, [0.8125, 0.875, 0.9375]),
        "logreg": ("classical head", 4, 1.0, [0.625, 0.75, 0.75]),
    }
    rows = []
    for label, (family, freeze, frac, tests) in accs.items():
        for seed, acc in enumerate(tests):
            rows.append(
                {
                    "target": "near",
                    "dataset": "digits",
                    "size": "2",
                    "seed": seed,
                    "arch": "lenet5",
                    "strategy": label,
                    "family": family,
                    "freeze": freeze,
                    "freeze_frac": frac,
                    "candidate": 1,
                    "val_acc": acc - 0.125,
                    "test_acc": acc,
                }
            )
    rows.append({**rows[3], "candidate": 2, "val_acc": 0.25, "test_acc": 1.0})  # 1 seed
    for label, acc in (("finetune", 0.875), ("freeze-2", 0.9375)):
        family, freeze, frac, _ = accs[label]
        row = {**rows[0], "size": "all", "strategy": label, "family": family}
        rows.append(
            {**row, "freeze": freeze, "freeze_frac": frac, "val_acc": None, "test_acc": acc}
        )
    return rows


def entry(strategy, family, freeze, frac, acc, std, ci95, per_seed, val, vs_best, top):
    return {
        "arch": "lenet5",
        "strategy": strategy,
        "family": family,
        "freeze": freeze,
        "freeze_frac": frac,
        "test_acc": acc,
        "test_acc_std": std,
        "ci95": ci95,
        "seeds": len(per_seed),
        "per_seed": per_seed,
        "dataset": "digits",
        "candidate": 1,
        "candidates_val_acc": val,
        "vs_best": vs_best,
        "top_group": top,
    }


def vs(diff, ci95, seeds, p, p_holm):
    return {"diff": diff, "ci95": ci95, "seeds": seeds, "p": p, "p_holm": p_holm}


FREEZE_2 = entry(
    "freeze-2", "freeze-b", 2, 0.5, 0.875, 0.0625, [0.7197413930156044, 1.0302586069843955],
    {"0": 0.8125, "1": 0.875, "2": 0.9375}, {"1": 0.75}, None, True,
)  # fmt: skip
FINETUNE = entry(
    "finetune", "finetune", 0, 0.0, 0.8125, 0.0625, [0.6572413930156044, 0.9677586069843956],
    {"0": 0.75, "1": 0.875, "2": 0.8125}, {"1": 0.6875, "2": 0.25},
    vs(-0.0625, [-0.21775860698439564, 0.09275860698439564], 3, 0.22540333075851673,
       0.22540333075851673),
    True,
)  # fmt: skip
LOGREG = entry(
    "logreg", "classical head", 4, 1.0, 0.7083333333333334, 0.07216878364870322,
    [0.5290561362604391, 0.8876105304062276], {"0": 0.625, "1": 0.75, "2": 0.75},
    {"1": 0.5833333333333334},
    vs(-0.16666666666666666, [-0.2563052652031138, -0.07702806813021953], 3,
       0.01526807216533814, 0.04580421649601442),
    False,
)  # fmt: skip
SCRATCH = entry(
    "scratch", "scratch", 0, 0.0, 0.625, 0.125, [0.3144827860312087, 0.9355172139687913],
    {"0": 0.5, "1": 0.625, "2": 0.75}, {"1": 0.5},
    vs(-0.25, [-0.40525860698439564, -0.09474139301560436], 3, 0.02020410288672877,
       0.04580421649601442),
    False,
)  # fmt: skip
FREEZE_2_ALL = entry(
    "freeze-2", "freeze-b", 2, 0.5, 0.9375, 0.0, None, {"0": 0.9375}, {"1": None}, None, True
)
FINETUNE_ALL = entry(
    "finetune", "finetune", 0, 0.0, 0.875, 0.0, None, {"0": 0.875}, {"1": None},
    vs(-0.0625, None, 1, None, 1.0), True,
)  # fmt: skip
VERDICT_TEST = "paired t over seeds, 95%; top group: Holm-corrected, 5%"
FRACTION = {
    "freeze_frac": 0.5,
    "best": "lenet5 freeze-2",
    "low": 0.0,
    "high": 0.5,
    "interval": "freeze fractions not separable from the best (paired t, Holm, 5%)",
}
EXPECTED = [
    {
        "target": "near",
        "dataset": "digits",
        "size": "2",
        "best": FREEZE_2,
        "runner_up": FINETUNE,
        "clear_winner": False,
        "verdict_test": VERDICT_TEST,
        "top_group": ["lenet5 freeze-2", "lenet5 finetune"],
        "pretraining_gain": {
            "pretrained": "lenet5 freeze-2",
            "scratch": "lenet5 scratch",
            "diff": 0.25,
            "ci95": [0.09474139301560436, 0.40525860698439564],
            "clear": True,
        },
        "best_freeze_fraction": FRACTION,
        "ranking": [FREEZE_2, FINETUNE, LOGREG, SCRATCH],
        "similarity": {"lenet5": 0.75},
    },
    {
        "target": "near",
        "dataset": "digits",
        "size": "all",
        "best": FREEZE_2_ALL,
        "runner_up": FINETUNE_ALL,
        "clear_winner": None,
        "verdict_test": VERDICT_TEST,
        "top_group": ["lenet5 freeze-2", "lenet5 finetune"],
        "pretraining_gain": None,
        "best_freeze_fraction": FRACTION,
        "ranking": [FREEZE_2_ALL, FINETUNE_ALL],
        "similarity": {"lenet5": 0.75},
    },
]

BEST_FREEZE_TXT = """\
target  size/class  best strategy    test acc [95% CI]     runner-up        test acc [95% CI]     best - runner-up [paired 95% CI]  seeds  verdict          top group (Holm, 5%)              pretrained - scratch [paired 95% CI]  similarity to source
------  ----------  ---------------  --------------------  ---------------  --------------------  --------------------------------  -----  ---------------  --------------------------------  ------------------------------------  --------------------
near    2           lenet5 freeze-2  0.875 [0.720, 1.030]  lenet5 finetune  0.812 [0.657, 0.968]  +0.062 [-0.093, +0.218]           3      no clear winner  lenet5 freeze-2, lenet5 finetune  +0.250 [+0.095, +0.405]               0.750
near    all         lenet5 freeze-2  0.938                 lenet5 finetune  0.875                 +0.062                            1      -                lenet5 freeze-2, lenet5 finetune  -                                     0.750"""

RANKING_TXT = """\
target  size/class  rank  strategy         b  test acc [95% CI]     best - this [paired 95% CI]  Holm p  top group  seeds  candidate (val acc)
------  ----------  ----  ---------------  -  --------------------  ---------------------------  ------  ---------  -----  -------------------
near    2           1     lenet5 freeze-2  2  0.875 [0.720, 1.030]  -                            -       yes        3      1 of 1 (0.750)
near    2           2     lenet5 finetune  0  0.812 [0.657, 0.968]  +0.062 [-0.093, +0.218]      0.225   yes        3      1 of 2 (0.688)
near    2           3     lenet5 logreg    4  0.708 [0.529, 0.888]  +0.167 [+0.077, +0.256]      0.046   no         3      1 of 1 (0.583)
near    2           4     lenet5 scratch   0  0.625 [0.314, 0.936]  +0.250 [+0.095, +0.405]      0.046   no         3      1 of 1 (0.500)
near    all         1     lenet5 freeze-2  2  0.938                 -                            -       yes        1      1 of 1
near    all         2     lenet5 finetune  0  0.875                 +0.062                       1.000   yes        1      1 of 1"""


def test_the_json_keeps_the_layout_of_the_answer_before_it_was_typed():
    answer = attach_similarity(best_per_size(sample_rows()), {"near": {"lenet5": 0.75}})
    assert answer.to_json() == json.dumps(EXPECTED, indent=2)  # keys, order, float reprs
    assert answer.to_dicts() == EXPECTED
    assert best_freeze_table(answer) == BEST_FREEZE_TXT
    assert ranking_table(answer) == RANKING_TXT
    item = answer[1]
    assert item.best is item.ranking[0] and item.runner_up is item.ranking[1]
    assert answer.targets() == ["near"] and item.target == "near" and item.dataset == "digits"
