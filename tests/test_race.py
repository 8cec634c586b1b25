"""The confirm race replayed from confirm rows (study.answer.race): the verdicts and the
recommendation a user reads, the rounds, the rules logged with a study, and what the
answer's tables and lines say of them. No training: the rows are made here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from study.answer.decision import CLEAR_WINNER, EQUIVALENT, UNDECIDED
from study.answer.query import best_per_size
from study.answer.race import RaceRules, contender, replay
from study.answer.race_result import Race
from study.answer.recommendation import recommendation_lines, verdict_text
from study.answer.report import best_freeze_table
from study.config.files import load_preset

RULES = RaceRules(looks={"digits": (2, 3, 5, 8)}, margins={"digits": {"1": 0.02}})
PARAMS = {"finetune": 60_000, "freeze-2": 20_000, "freeze-4": 900, "linear-probe": 850}


def decided_race(winner: str) -> Race:
    """A race its state reads as decided (a clear winner)."""
    return Race(CLEAR_WINNER, "val_acc", 0.02, 0.05, winner, (winner,), winner, "", None, ())


def rows_of(means: dict[str, float], seeds: int, sd: float, seed: int = 0) -> list[dict]:
    """Confirm rows of lenet5 labels with these mean validation accuracies: a shared subset
    effect per seed, own noise of SD `sd` (test accuracy the same, 1 point lower)."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 0.05, seeds)
    rows = []
    for label, mean in means.items():
        own = rng.normal(0, sd, seeds)
        for s in range(seeds):
            val = float(mean + shared[s] + own[s])
            rows.append(
                {
                    "target": "digits",
                    "dataset": "digits",
                    "size": "1",
                    "seed": s,
                    "arch": "lenet5",
                    "strategy": label,
                    "family": "freeze-b" if label.startswith("freeze") else label,
                    "freeze": 0,
                    "freeze_frac": 0.0,
                    "candidate": 1,
                    "val_acc": val,
                    "test_acc": val - 0.01,
                    "trainable_params": PARAMS.get(label, 10_000),
                    "train_seconds": 1.0,
                }
            )
    return rows


def test_two_identical_labels_come_out_equivalent_and_the_deeper_freeze_is_recommended():
    rows = rows_of({"finetune": 0.8, "freeze-4": 0.8}, seeds=8, sd=0.002)
    for row in rows:  # the same accuracies: only the cost tells them apart
        if row["strategy"] == "freeze-4":
            row["val_acc"] = next(
                r["val_acc"]
                for r in rows
                if r["strategy"] == "finetune" and r["seed"] == row["seed"]
            ) - 0.001 * (row["seed"] % 2)
    state = replay(rows, "digits", "1", RULES, 4)
    assert state.decided and state.race.verdict == EQUIVALENT
    assert state.race.group == ("lenet5 finetune #1", "lenet5 freeze-4 #1")
    assert state.race.recommendation == "lenet5 freeze-4"
    assert "freezes the most: 900 trainable parameters" in state.race.reason
    assert state.race.to_dict()["group"] == list(state.race.group)  # beside "survivors"
    assert state.race.to_dict()["survivors"] == list(state.race.survivors)


def test_labels_five_points_apart_are_never_equivalent_and_the_worse_one_never_picked():
    for seed in range(5):
        rows = rows_of({"finetune": 0.80, "freeze-4": 0.75}, seeds=8, sd=0.02, seed=seed)
        race = replay(rows, "digits", "1", RULES, 4).race
        # the better may be shown within the margin of the best (itself); the worse never
        assert "lenet5 freeze-4 #1" not in race.group
        assert race.verdict != EQUIVALENT or race.group == ("lenet5 finetune #1",)
        assert race.recommendation in (None, "lenet5 finetune")


def test_a_dropped_label_is_never_recommended_and_its_drop_says_why():
    means = {"finetune": 0.80, "freeze-2": 0.80, "freeze-4": 0.60, "linear-probe": 0.55}
    state = replay(rows_of(means, seeds=8, sd=0.004), "digits", "1", RULES, 4)
    dropped = {name: reason for r in state.race.rounds for name, reason in r.dropped}
    assert {"lenet5 freeze-4 #1", "lenet5 linear-probe #1"} <= set(dropped)
    assert "shown worse than" in dropped["lenet5 linear-probe #1"]
    assert state.race.recommendation in ("lenet5 finetune", "lenet5 freeze-2")
    assert state.race.recommendation == "lenet5 freeze-2"  # fewer parameters, equivalent


def test_the_rounds_count_the_trials_of_the_contenders_still_in():
    means = {"finetune": 0.80, "freeze-2": 0.79, "linear-probe": 0.40}
    rows = rows_of(means, seeds=8, sd=0.01)
    dropped_at_once = [r for r in rows if r["strategy"] != "linear-probe" or r["seed"] < 2]
    state = replay(dropped_at_once, "digits", "1", RULES, 4)
    first = state.race.rounds[0]
    assert (first.look, first.seeds, first.trials) == (1, 2, 6)
    assert first.dropped and first.dropped[0][0] == "lenet5 linear-probe #1"
    assert state.race.trials == len(
        [r for r in dropped_at_once if r["seed"] < state.race.rounds[-1].seeds]
    )
    assert state.race.trials < 3 * 8  # the fixed design: every label on every seed


def test_a_look_that_has_not_run_is_not_taken():
    means = {"finetune": 0.80, "freeze-2": 0.80}
    rows = [r for r in rows_of(means, seeds=8, sd=0.03) if r["seed"] < 3]  # looks 1 and 2 ran
    state = replay(rows, "digits", "1", RULES, 4)
    assert state.looks_done == 2 and state.race.verdict == UNDECIDED
    assert [r.seeds for r in state.race.rounds] == [2, 3]


def test_the_rules_round_trip_through_the_study_runs_param_and_follow_the_config():
    rules = RaceRules.of(load_preset("default"))
    assert RaceRules.from_json(rules.to_json()) == rules
    assert rules.looks == {"digits": (2, 3, 5)} or rules.looks["digits"][-1] == 5
    assert rules.margins["digits"]["1"] == 0.02 and rules.margins["digits"]["all"] == 0.01
    assert len(rules.to_json()) < 6000  # an MLflow param
    assert json.loads(rules.to_json())["alpha"] == 0.05


def test_the_answer_leads_with_the_recommendation_and_its_reason():
    means = {"finetune": 0.80, "freeze-2": 0.80, "linear-probe": 0.50}
    rows = rows_of(means, seeds=8, sd=0.002)
    answer = best_per_size(rows, RULES)
    item = answer[0]
    assert item.verdict in (EQUIVALENT, CLEAR_WINNER) and item.recommendation
    line = recommendation_lines(answer)[0]
    assert line.startswith(f"1 per class: use {item.recommendation} (test acc ")
    assert item.race.reason in line
    table = best_freeze_table(answer)
    assert "recommended" in table.splitlines()[0] and verdict_text(item) in table
    assert answer.to_dicts()[0]["race"]["recommendation"] == item.recommendation


@pytest.mark.parametrize("field", ["contender"])
def test_a_contender_is_named_after_its_entry_and_candidate(field):
    row = {"arch": "cnn4", "strategy": "freeze-3", "candidate": 2}
    assert contender(row) == "cnn4 freeze-3 #2"


@pytest.mark.parametrize(
    "answer, says",
    [
        ({"looks": [3, 2]}, "strictly increasing"),
        ({"looks": [1]}, "each at least 2"),
        ({"equivalence_margin": [{"up_to": 2, "margin": 0.02}]}, "up_to: null"),
        ({"equivalence_margin": [{"margin": 1.5}]}, "margin"),
        ({"spending": "pocock"}, "bonferroni"),
    ],
)
def test_a_bad_answer_section_is_refused_in_one_line(answer, says):
    from study.config.files import parse_config
    from study.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        parse_config({"answer": answer}, "test")
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_each_round_runs_the_next_looks_seeds_of_the_contenders_still_in_and_the_reference():
    from study.answer.race import RaceState
    from study.stages.confirm import contender_of, round_configs
    from trainables.contract import Key

    def config(strategy, seed, candidate=1):
        return {
            Key.TARGET: "digits",
            Key.SIZE: 1,
            Key.ARCH: "lenet5",
            Key.STRATEGY: strategy,
            Key.FREEZE: 0,
            Key.CANDIDATE: candidate,
            Key.SEED: seed,
        }

    every = [config(s, seed) for s in ("finetune", "linear-probe", "scratch") for seed in range(8)]
    states = {("digits", "1"): RaceState(alive={contender_of(c) for c in every})}
    first = round_configs(every, states, RULES, 0)
    assert sorted({c[Key.SEED] for c in first}) == [0, 1] and len(first) == 6
    states[("digits", "1")].alive = {"lenet5 finetune #1"}  # the others dropped at look 1
    second = round_configs(every, states, RULES, 1)
    # scratch is the reference of what pretraining is worth: it runs on, dropped or not
    assert {(c[Key.STRATEGY], c[Key.SEED]) for c in second} == {("finetune", 2), ("scratch", 2)}
    states[("digits", "1")].race = decided_race("lenet5 finetune #1")
    assert round_configs(every, states, RULES, 2) == []


def test_the_verdict_counts_the_group_not_every_contender_still_in():
    """linear-probe, 3 points below and noisy, is still in but not shown within 2 points of
    the best: the verdict counts the 2 labels of the group, the JSON keeps both lists."""
    rows = rows_of({"finetune": 0.80, "freeze-4": 0.80, "linear-probe": 0.77}, 8, sd=0.001)
    top = {r["seed"]: r["val_acc"] for r in rows if r["strategy"] == "finetune"}
    for row in rows:
        swing = (-1) ** row["seed"] * (1 + row["seed"] // 2)  # +-1, +-2, +-3, +-4
        if row["strategy"] == "freeze-4":  # finetune's, +-0.1 to +-0.4 points
            row["val_acc"] = top[row["seed"]] + 0.001 * swing
        if row["strategy"] == "linear-probe":  # 3 points below, +-1.5 to +-6 points
            row["val_acc"] = top[row["seed"]] - 0.03 + 0.015 * swing
    rules = RaceRules(looks={"digits": (8,)}, margins=RULES.margins, pooled=False)
    answer = best_per_size(rows, rules)  # unpooled: the noise differs by label
    race = answer[0].race
    assert race.verdict == EQUIVALENT and len(race.survivors) == 3
    assert race.group == ("lenet5 finetune #1", "lenet5 freeze-4 #1")
    assert verdict_text(answer[0]) == "equivalent within 2 points (2 labels)"
    assert race.recommendation == "lenet5 freeze-4"


def test_a_race_that_cannot_decide_races_no_further_and_its_best_runs_every_seed():
    """Labels a point apart with paired noise of 20 points: after look 1 the seeds likely to
    decide are far over 5 x the 8 the race has; it stops there, undecided, and only its best
    label (both its candidates) runs looks 2-4 (the rounds count those trials, drop
    nothing); the answer says why."""
    from study.stages.confirm import contender_of, round_configs
    from trainables.contract import Key

    rules = RaceRules(RULES.looks, RULES.margins, futility=5)
    means = {"finetune": 0.80, "freeze-2": 0.795, "freeze-4": 0.79, "linear-probe": 0.785}
    rows = rows_of(means, seeds=8, sd=0.2, seed=3)
    survivors = tuple(sorted(contender(r) for r in rows[::8]))
    best = replay(rows, "digits", "1", rules, 1).race.best
    rows += [  # the best label's 2nd candidate: it runs on with the 1st, the others stop
        {**r, "candidate": 2, "val_acc": r["val_acc"] - 0.001}
        for r in rows
        if f"lenet5 {r['strategy']}" == best
    ]
    ran = [r for r in rows if r["seed"] < 2 or f"lenet5 {r['strategy']}" == best]
    state = replay(ran, "digits", "1", rules, 4)
    race = state.race
    assert race.verdict == UNDECIDED and race.futile and race.recommendation is None
    assert (
        "raced no further" in race.reason and f"{best}, the best by mean, ran all 8" in race.reason
    )
    assert race.survivors == tuple(sorted({*survivors, f"{best} #2"}))  # none dropped
    assert [(r.seeds, r.trials, r.dropped) for r in race.rounds[1:]] == [
        (3, 2, ()),
        (5, 4, ()),
        (8, 6, ()),
    ]
    assert race.trials == len(ran) and state.alive == {f"{best} #1", f"{best} #2"}
    assert state.futile and not state.decided
    every = [
        {Key.TARGET: "digits", Key.SIZE: 1, Key.ARCH: "lenet5", Key.STRATEGY: strategy,
         Key.FREEZE: 0, Key.CANDIDATE: 1, Key.SEED: seed}
        for strategy in ("finetune", "linear-probe", "scratch") for seed in range(8)
    ]  # fmt: skip
    state.alive = {"lenet5 linear-probe #1"}  # the best by mean, were it linear-probe
    on = round_configs(every, {("digits", "1"): state}, rules, 2)
    assert {contender_of(c) for c in on} == {"lenet5 linear-probe #1", "lenet5 scratch #1"}
    assert RaceRules.from_json(rules.to_json()) == rules
    old = json.loads(rules.to_json())
    del old["futility"]  # a study logged before futility stopping: it raced to the end
    assert RaceRules.from_json(json.dumps(old)).futility == 0


def test_an_undecided_race_says_the_margin_its_seeds_do_show_and_which_label():
    """Labels within a point, paired noise of 3 points on 8 seeds: not shown within 2 points,
    so undecided; the verdict, the reason and the JSON say the margin these seeds show (the
    least the same tests would have decided at, rounded up) and the label it is for."""
    from study.answer.choose import points_shown

    means = {"finetune": 0.80, "freeze-2": 0.795, "freeze-4": 0.79}
    rows = rows_of(means, seeds=8, sd=0.03, seed=4)
    answer = best_per_size(rows, RULES)
    race = answer[0].race
    assert race.verdict == UNDECIDED and not race.futile and race.recommendation is None
    label, margin = race.shown_within
    assert label in {f"lenet5 {s}" for s in means} and margin > 0.02
    shown = points_shown(margin)
    assert shown.endswith(" points") and float(shown.split()[0]) >= margin * 100
    assert verdict_text(answer[0]).startswith(f"undecided (within {shown}, not 2 points; ")
    assert f"; {label} is shown within {shown} of every contender still in" in race.reason
    assert race.to_dict()["shown_within"] == {"label": label, "margin": margin}
    line = recommendation_lines(answer)[0]
    assert line.startswith("1 per class: no recommendation yet: undecided after 8 seeds")
    assert f"{label} is shown within {shown}" in line
