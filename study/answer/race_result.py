"""What the confirm race of a (target, size) decided (study.answer.race replays it): the
verdict, the recommendation and why, and each round with the contenders it dropped. Part of
the typed answer (study.answer.model.SizeResult.race) and of its JSON (`race`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Round:
    """One look of a (target, size)'s confirm race: the seeds every contender still in had by
    then, the trials the round ran, and the contenders it dropped with the test that did."""

    look: int  # 1-based
    seeds: int
    trials: int
    dropped: tuple[tuple[str, str], ...]  # (contender, reason)

    def to_dict(self) -> dict:
        dropped = [{"contender": name, "reason": reason} for name, reason in self.dropped]
        return {"look": self.look, "seeds": self.seeds, "trials": self.trials, "dropped": dropped}


@dataclass(frozen=True)
class Race:
    """The decision of a (target, size) (study.answer.decision) on validation accuracy: the
    verdict (clear winner, equivalent, undecided), the contenders still in, the group (each
    shown within the margin of every one still in: the equivalent ones; the winner alone),
    the recommendation and why, the seeds likely to decide an undecided one and the margin it
    is decided at now, every round."""

    verdict: str
    metric: str
    margin: float
    alpha: float
    best: str
    survivors: tuple[str, ...]
    recommendation: str | None  # an entry's name (`lenet5 freeze-2`); None: undecided
    reason: str
    seeds_needed: int | None
    rounds: tuple[Round, ...]
    group: tuple[str, ...] = ()  # contenders, as survivors; () when undecided
    stopped_at: int = 0  # the look (1-based) after which a futile race raced no further
    shown_within: tuple[str, float] | None = None  # undecided: a label, the margin it is
    # shown within of every contender still in (study.answer.decision.Decision.shown_within)

    @property
    def futile(self) -> bool:
        """Undecided, and likely so at its last look: it raced no further."""
        return self.stopped_at > 0

    @property
    def trials(self) -> int:
        return sum(r.trials for r in self.rounds)

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "metric": self.metric,
            "margin": self.margin,
            "alpha": self.alpha,
            "best": self.best,
            "survivors": list(self.survivors),
            "group": list(self.group),
            "recommendation": self.recommendation,
            "reason": self.reason,
            "seeds_needed": self.seeds_needed,
            "stopped_at": self.stopped_at or None,
            "shown_within": None
            if self.shown_within is None
            else {"label": self.shown_within[0], "margin": self.shown_within[1]},
            "trials": self.trials,
            "rounds": [r.to_dict() for r in self.rounds],
        }
