"""What a user reads first of each (target, size): the verdict and the recommendation, in
words; the terminal (study run, study best-freeze), the text and Markdown tables and the
study run's description all say them with these functions."""

from __future__ import annotations

from study.answer.choose import points, points_shown
from study.answer.model import Answer, SizeResult
from study.answer.race import entry_name


def verdict_text(item: SizeResult) -> str:
    """`clear winner`, `equivalent within 2 points (4 labels)`, `undecided (within 3.5 points,
    not 2 points; about 12 seeds would likely decide)`;
    studies from before the race: the paired verdict of the best against the runner-up."""
    race = item.race
    if race is None:
        if item.clear_winner is None:
            return "no runner-up" if item.runner_up is None else "no verdict: under 2 seeds"
        top = f"no clear winner; top group of {len(item.top_group)}"
        return "clear winner" if item.clear_winner else top
    if race.verdict == "equivalent":  # the group; a Race without one: those still in
        labels = len({entry_name(name) for name in race.group or race.survivors})
        return (
            f"equivalent within {points(race.margin)} ({labels} label{'s' if labels > 1 else ''})"
        )
    if race.verdict == "undecided":
        more = f"about {race.seeds_needed} seeds" if race.seeds_needed else "many more seeds"
        stopped = "; raced no further" if race.futile else ""
        shown = (  # the margin these seeds do decide at
            f"within {points_shown(race.shown_within[1])}, not {points(race.margin)}; "
            if race.shown_within
            else ""
        )
        return f"undecided ({shown}{more} would likely decide{stopped})"
    return race.verdict


def verdict_cell(item: SizeResult) -> str:
    """The best-freeze table's verdict: the race's; before the race, as the table had it."""
    if item.race is None:
        return {True: "clear winner", False: "no clear winner", None: "-"}[item.clear_winner]
    return verdict_text(item)


def _entry(item: SizeResult, name: str | None):
    return next((entry for entry in item.ranking if entry.name == name), None)


def recommendation_line(item: SizeResult) -> str:
    """`use cnn4 freeze-3 (test acc 0.912): equivalent within 1 point (3 labels); freezes
    the most: ...`; without a decision, the best by test accuracy and why none is made."""
    race, best = item.race, item.best
    if race is None:  # a study from before the race: its best and the paired verdict
        return f"{best.name} {best.test_acc:.3f} ({verdict_text(item)})"
    if race.recommendation is None:  # the leader on validation accuracy, not a pick
        leader = _entry(item, race.best)
        accuracy = f" (test acc {leader.test_acc:.3f})" if leader is not None else ""
        return (
            f"no recommendation yet: {race.reason}; leading on validation: {race.best}"
            f"{accuracy}, {len(race.survivors)} contenders still in"
        )
    entry = _entry(item, race.recommendation)
    accuracy = f" (test acc {entry.test_acc:.3f})" if entry is not None else ""
    if race.verdict == "clear winner":  # the reason says so
        return f"use {race.recommendation}{accuracy}: {race.reason}"
    return f"use {race.recommendation}{accuracy}: {verdict_text(item)}; {race.reason}"


def recommendation_lines(answer: Answer, several_targets: bool | None = None) -> list[str]:
    """`digits, 1 per class: use ...`, a line per (target, size)."""
    named = len(answer.targets()) > 1 if several_targets is None else several_targets
    return [
        f"{f'{item.target}, ' if named else ''}{item.size} per class: {recommendation_line(item)}"
        for item in answer
    ]


def _round(race, done) -> str:
    if race.futile and done.look > race.stopped_at:  # raced no further: nothing to drop
        return f"{done.trials} trials, its best label and the references alone"
    return f"{done.trials} trials, {len(done.dropped)} out"


def budget_lines(answer: Answer) -> list[str]:
    """Per (target, size) the confirm race's rounds: seeds, trials, who went out."""
    lines = []
    for item in answer:
        if item.race is None:
            continue
        race = item.race
        rounds = "; ".join(
            f"look {r.look} at {r.seeds} seeds: {_round(race, r)}" for r in race.rounds
        )
        lines.append(f"{item.target}, {item.size} per class: {race.trials} trials ({rounds})")
    return lines
