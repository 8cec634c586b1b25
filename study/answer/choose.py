"""Which contender of a decided race to use, and why (the race's recommendation): the clear
winner; else the cheapest of the top group, the deepest freeze or a classical head, since
every member is shown within the margin of the truly best (study.answer.decision)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from study.answer.decision import CLEAR_WINNER, UNDECIDED, Decision
from study.answer.looks import CAP


def points(margin: float) -> str:
    """`1 point`, `2 points`, `0.5 points`: a margin (a fraction of the images) in words."""
    value = margin * 100
    return f"{value:g} point{'' if round(value, 9) == 1 else 's'}"


def points_shown(margin: float) -> str:
    """`3.5 points`: a margin shown (decision.Decision.shown_within), rounded up to a tenth
    of a point, so that it still bounds."""
    return f"{math.ceil(margin * 1000 - 1e-9) / 10:.1f} points"


@dataclass(frozen=True)
class Candidate:  # what the recommendation weighs besides accuracy: its cost to train
    name: str
    trainable_params: int
    train_seconds: float


def recommend(
    candidates: list[Candidate], decision: Decision, shown: Callable[[str], str] = str
) -> tuple[str | None, str]:
    """The contender to use, and why: the clear winner; else, of the group (each shown within
    the margin of every contender still in, so of the truly best: never a dropped one), the
    fewest trainable parameters, then less training time, then the name. `shown` names a
    contender in the reason (the race: its label, without the candidate's `#1`)."""
    if decision.verdict == CLEAR_WINNER:
        return decision.best, f"clear winner: better than every other on {decision.seeds} seeds"
    if decision.verdict == UNDECIDED and decision.seeds < 2:
        return None, f"undecided: {decision.seeds} seed, no paired test (it needs 2 or more)"
    if decision.verdict == UNDECIDED:  # what more seeds would likely do
        more = f"about {decision.seeds_needed}" if decision.seeds_needed else f"over {CAP}"
        return None, f"undecided after {decision.seeds} seeds: {more} seeds would likely decide"
    group = decision.group or decision.survivors  # a Decision made without one: every pair
    known = {c.name: c for c in candidates}
    costs = {name: known[name] for name in group if name in known}
    within = f"within {points(decision.margin)} of every contender still in"
    if not costs:
        if decision.best in group:
            return decision.best, f"the best by mean, {within} (no costs given)"
        return sorted(group)[0], f"{within} (no costs given)"
    pick = min(costs.values(), key=lambda c: (c.trainable_params, c.train_seconds, c.name))
    best = known.get(decision.best)
    cost = (pick.trainable_params, pick.train_seconds)
    if best is None or cost >= (best.trainable_params, best.train_seconds):
        what = "the best by mean and " if pick.name == decision.best else ""
        of = f"the cheapest of the {len(costs)}" if len(costs) > 1 else "the only one"
        return pick.name, f"{what}{of} {within}"
    why = (
        f"freezes the most: {pick.trainable_params:,} trainable parameters against "
        f"{best.trainable_params:,}"
        if pick.trainable_params < best.trainable_params
        else f"as few parameters, faster: {pick.train_seconds:.0f} s against "
        f"{best.train_seconds:.0f} s"
    )
    return pick.name, f"{why} for the best ({shown(best.name)}); {within}"
