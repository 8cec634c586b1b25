"""The confirm race of each (target, size), replayed from its finished confirm runs.

One owner for both sides: the confirm phase (study.stages.confirm) asks after each round
which contenders are still in and which (target, size)s are decided; the answer
(study.answer.query) asks the same of a finished study, so the verdict a user reads is the
one the race acted on. A contender is one (architecture, strategy label, candidate); the race
runs on validation accuracy (`val_acc`, the best over a trial's reports): test accuracy is
only ever read, never used to drop, decide or recommend.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace

from study.answer.choose import Candidate, points, points_shown, recommend
from study.answer.decision import UNDECIDED, decide
from study.answer.looks import Looks
from study.answer.race_result import Race, Round
from trainables.contract import config_size

METRIC = "val_acc"  # of the confirm rows (study.answer.query.study_confirm_rows)


def contender(row: dict) -> str:
    """`lenet5 freeze-2 #1`: the entry's name and its candidate configuration."""
    return f"{row['arch']} {row['strategy']} #{row.get('candidate', 1)}"


def entry_name(name: str) -> str:
    return name.rsplit(" #", 1)[0]


@dataclass(frozen=True)
class RaceRules:
    """How every race of a study looks and decides; logged on the study run (to_json) so the
    answer replays the race as it ran. looks: {target: cumulative seeds per look};
    margins: {target: {size: equivalence margin}}."""

    looks: dict[str, tuple[int, ...]]
    margins: dict[str, dict[str, float]]
    alpha: float = 0.05
    spending: str = "bonferroni"
    pooled: bool = True
    futility: float = 0.0  # a study logged before futility stopping raced to its last look

    @classmethod
    def of(cls, config) -> RaceRules:
        """From a StudyConfig (study.config.schema)."""
        answer = config.answer
        looks = {t.key: answer.looks_for(t.seeds) for t in config.target_list()}
        margins = defaultdict(dict)
        for target, size in config.target_sizes():
            margins[target.key][str(config_size(size))] = answer.margin_for(size)
        rules = (answer.alpha, answer.spending, answer.pooled, answer.futility)
        return cls(looks, dict(margins), *rules)

    def to_json(self) -> str:
        return json.dumps(
            {"looks": {t: list(v) for t, v in self.looks.items()}, "margins": self.margins}
            | {"alpha": self.alpha, "spending": self.spending, "pooled": self.pooled}
            | {"futility": self.futility}
        )

    @classmethod
    def from_json(cls, text: str) -> RaceRules:
        data = json.loads(text)
        looks = {t: tuple(v) for t, v in data.pop("looks").items()}
        return cls(looks, **data)

    def planned(self, target: str) -> Looks:
        seeds = self.looks[target]  # one seed: no paired test (decide says undecided)
        seeds = seeds if seeds[0] >= 2 else (2,)
        return Looks(seeds, self.alpha, self.spending, self.pooled, self.futility)


@dataclass
class RaceState:
    """A race after the looks it has had: the contenders still in, the decision, rounds.
    A futile race (study.answer.looks.Looks.futile) is not decided: it races no further,
    and only the label of its best by mean (`alive`: its candidates still in) and the
    references run its later looks."""

    alive: set[str]
    race: Race | None = None
    rounds: list[Round] = field(default_factory=list)

    @property
    def looks_done(self) -> int:
        return len(self.rounds)

    @property
    def decided(self) -> bool:
        return self.race is not None and self.race.verdict != UNDECIDED

    @property
    def futile(self) -> bool:
        return self.race is not None and self.race.futile


def replay(rows: list[dict], target: str, size: str, rules: RaceRules, upto: int) -> RaceState:
    """The race of (target, size) over its first `upto` looks, from its confirm `rows` (of
    this (target, size)); it stops before a look none of the contenders still in has a run
    of (one that has not run). Each look sees the seeds below its count only."""
    per_seed: dict[str, dict[int, float]] = defaultdict(dict)
    costs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        if row.get(METRIC) is not None:
            per_seed[contender(row)][int(row["seed"])] = row[METRIC]
            costs[contender(row)].append(
                (row.get("trainable_params") or 0, row.get("train_seconds"))
            )
    looks, margin = rules.planned(target), rules.margins[target][size]
    state, done = RaceState(alive=set(per_seed)), 0
    for look, cumulative in enumerate(rules.looks[target][:upto]):
        if not any(done <= s < cumulative for c in state.alive for s in per_seed[c]):
            break
        trials = sum(done <= s < cumulative for accs in per_seed.values() for s in accs)
        if state.futile:  # the best label and the references on later seeds; nothing decided
            state.rounds.append(Round(look + 1, cumulative, trials, ()))
            state.race, done = replace(state.race, rounds=tuple(state.rounds)), cumulative
            continue
        view = {
            c: {s: v for s, v in accs.items() if s < cumulative} for c, accs in per_seed.items()
        }
        decision = decide(view, state.alive, look, looks, margin)
        dropped = tuple((d.name, d.reason) for d in decision.drops)
        state.rounds.append(Round(look + 1, cumulative, trials, dropped))
        state.alive, done = set(decision.survivors), cumulative
        state.race = _race(decision, state.rounds, looks, _candidates(costs))
        if state.futile:  # the answer picks among a label's candidates on every seed
            leader = entry_name(decision.best)
            state.alive = {c for c in decision.survivors if entry_name(c) == leader}
        if state.decided:
            break
    return state


def _candidates(costs: dict[str, list[tuple[float, float | None]]]) -> list[Candidate]:
    out = []
    for name, runs in costs.items():
        seconds = [s for _, s in runs if s is not None]
        mean_seconds = sum(seconds) / len(seconds) if seconds else 0.0
        out.append(Candidate(name, int(max(p for p, _ in runs)), mean_seconds))
    return out


def _race(decision, rounds: list[Round], looks: Looks, candidates: list[Candidate]) -> Race:
    pick, reason = recommend(candidates, decision, shown=entry_name)  # the label, not `#1`
    nearest = decision.shown_within
    if decision.futile:
        reason += (
            f", over {looks.futility:g} x the {looks.seeds[-1]} it has: raced no further"
            f" ({entry_name(decision.best)}, the best by mean, ran all {looks.seeds[-1]})"
        )
    if nearest is not None:  # what these seeds do show
        reason += (
            f"; {entry_name(nearest[0])} is shown within {points_shown(nearest[1])} of every "
            f"contender still in (not {points(decision.margin)})"
        )
    return Race(
        verdict=decision.verdict,
        metric=METRIC,
        margin=decision.margin,
        alpha=looks.alpha,
        best=entry_name(decision.best),
        survivors=tuple(decision.survivors),
        group=tuple(decision.group),
        recommendation=None if pick is None else entry_name(pick),
        reason=reason,
        seeds_needed=decision.seeds_needed,
        rounds=tuple(rounds),
        stopped_at=decision.look + 1 if decision.futile else 0,
        shown_within=None if nearest is None else (entry_name(nearest[0]), nearest[1]),
    )


def races(rows: list[dict], rules: RaceRules) -> dict[tuple[str, str], Race | None]:
    """The finished race of every (target, size) of a study's confirm rows."""
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        grouped[(row["target"], row["size"])].append(row)
    return {
        key: replay(group, *key, rules, len(rules.looks[key[0]])).race
        for key, group in grouped.items()
        if key[0] in rules.looks
    }
