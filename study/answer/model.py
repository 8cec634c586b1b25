"""The answer of a study, typed: what study.answer.query builds and the report, the
descriptions, the pictures, `study best-freeze` and the protocol read.

- Answer: every (target, size)'s result, by target then size; `to_json()` is
  report/best_freeze.json and `study best-freeze --format json`
- SizeResult: one (target, size): the best, the runner-up, the paired verdict, the top
  group, the pretraining gain, the best freeze fraction, the ranking, the similarity
- Entry: one (architecture, strategy label) of a ranking, with its comparison to the best
- VsBest, PretrainingGain, FreezeFraction: the paired comparisons an answer carries
- Race (study.answer.race_result): the confirm race's verdict and recommendation

Every `to_dict()` keeps the keys, their order and the values of the answer's JSON as it
was before it was typed: the files logged to study runs and the scripts reading
`--format json` depend on it. How a strategy's family is grouped, compared and drawn is
the strategy registry's (search_spaces.strategies.StrategySpec), read through `Entry`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from search_spaces.strategies import PhasePlan, StrategySpec, family_spec
from study.answer.frame import AnswerViews  # to_frame(), best(), recommendation()
from study.answer.race_result import Race

Interval = tuple[float, float]

VERDICT_TEST = "paired t over seeds, 95%; top group: Holm-corrected, 5%"
FREEZE_INTERVAL = "freeze fractions not separable from the best (paired t, Holm, 5%)"


def _listed(ci95: Interval | None) -> list[float] | None:
    return None if ci95 is None else list(ci95)


def _dict(part) -> dict | None:
    return None if part is None else part.to_dict()


@dataclass(frozen=True)
class VsBest:
    """An entry against the best of its (target, size), paired over their common seeds: the mean
    of (entry - best), its 95% interval (None under 2 common seeds), the paired t-test's
    p-value (None: no test) and that p Holm-adjusted over every comparison with the best."""

    diff: float
    ci95: Interval | None
    seeds: int
    p: float | None
    p_holm: float

    def to_dict(self) -> dict:
        return {
            "diff": self.diff,
            "ci95": _listed(self.ci95),
            "seeds": self.seeds,
            "p": self.p,
            "p_holm": self.p_holm,
        }


@dataclass(frozen=True)
class Entry:
    """One (architecture, strategy label) of a (target, size): its test accuracy per seed (seeds
    as strings, the JSON's keys), their mean, spread and 95% interval; the candidate
    configuration that answers for the label and every candidate's mean validation
    accuracy; `vs_best` and `top_group` once compared with the best (query.compare_with_best)."""

    arch: str
    strategy: str  # the label: `freeze-2`, not `freeze-b`
    family: str | None  # the registry's StrategySpec.family; None in rows without one
    freeze: int | None
    freeze_frac: float
    test_acc: float
    test_acc_std: float
    ci95: Interval | None
    seeds: int
    per_seed: dict[str, float]
    dataset: str
    candidate: int
    candidates_val_acc: dict[str, float | None]
    vs_best: VsBest | None = None  # None for the best itself
    top_group: bool = True

    @property
    def name(self) -> str:
        """`lenet5 freeze-2`: how tables, top groups and comparisons name the entry."""
        return f"{self.arch} {self.strategy}"

    @property
    def spec(self) -> StrategySpec | None:
        return family_spec(self.family)

    @property
    def from_scratch(self) -> bool:
        return self.spec is not None and self.spec.from_scratch

    @property
    def fixed_boundary(self) -> bool:
        return self.spec is not None and self.spec.fixed_boundary

    @property
    def sweep(self) -> PhasePlan | None:
        return None if self.spec is None else self.spec.sweep

    @property
    def family_title(self) -> str | None:
        return self.family if self.spec is None else self.spec.family_title

    def compared(self, vs_best: VsBest | None, top_group: bool) -> Entry:
        return replace(self, vs_best=vs_best, top_group=top_group)

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "strategy": self.strategy,
            "family": self.family,
            "freeze": self.freeze,
            "freeze_frac": self.freeze_frac,
            "test_acc": self.test_acc,
            "test_acc_std": self.test_acc_std,
            "ci95": _listed(self.ci95),
            "seeds": self.seeds,
            "per_seed": dict(self.per_seed),
            "dataset": self.dataset,
            "candidate": self.candidate,
            "candidates_val_acc": dict(self.candidates_val_acc),
            "vs_best": _dict(self.vs_best),
            "top_group": self.top_group,
        }


@dataclass(frozen=True)
class PretrainingGain:
    """The best pretrained entry minus the best from-scratch one, paired over seeds."""

    pretrained: str
    scratch: str
    diff: float
    ci95: Interval | None
    clear: bool

    def to_dict(self) -> dict:
        return {
            "pretrained": self.pretrained,
            "scratch": self.scratch,
            "diff": self.diff,
            "ci95": _listed(self.ci95),
            "clear": self.clear,
        }


@dataclass(frozen=True)
class FreezeFraction:
    """Where to freeze: the best fixed-boundary entry's b/B, and the range of the freeze
    fractions the seeds cannot tell from it."""

    freeze_frac: float
    best: str
    low: float
    high: float
    interval: str = FREEZE_INTERVAL

    def to_dict(self) -> dict:
        return {
            "freeze_frac": self.freeze_frac,
            "best": self.best,
            "low": self.low,
            "high": self.high,
            "interval": self.interval,
        }


@dataclass(frozen=True)
class SizeResult:
    """The answer for one (target, size): every (architecture, label) confirmed, best
    first (`ranking`), what the paired comparisons say, and the target's similarity to
    the source per architecture (None: not measured)."""

    target: str
    dataset: str
    size: str
    ranking: tuple[Entry, ...]
    clear_winner: bool | None  # None: no runner-up, or under 2 common seeds
    pretraining_gain: PretrainingGain | None
    best_freeze_fraction: FreezeFraction | None
    similarity: dict[str, float] | None = None
    verdict_test: str = VERDICT_TEST
    race: Race | None = None  # None: a study from before the confirm phase raced

    @property
    def verdict(self) -> str | None:
        """clear winner, equivalent or undecided (the race's); None without a race."""
        return None if self.race is None else self.race.verdict

    @property
    def recommendation(self) -> str | None:
        """The entry to use (its name), None when undecided or without a race."""
        return None if self.race is None else self.race.recommendation

    @property
    def best(self) -> Entry:
        return self.ranking[0]

    @property
    def runner_up(self) -> Entry | None:
        return self.ranking[1] if len(self.ranking) > 1 else None

    @property
    def top_group(self) -> list[str]:
        """The names of every entry not separable from the best, best first."""
        return [entry.name for entry in self.ranking if entry.top_group]

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "dataset": self.dataset,
            "size": self.size,
            "best": self.best.to_dict(),
            "runner_up": _dict(self.runner_up),
            "clear_winner": self.clear_winner,
            "verdict_test": self.verdict_test,
            "top_group": self.top_group,
            "pretraining_gain": _dict(self.pretraining_gain),
            "best_freeze_fraction": _dict(self.best_freeze_fraction),
            "ranking": [entry.to_dict() for entry in self.ranking],
            "similarity": self.similarity,
            **({} if self.race is None else {"race": self.race.to_dict()}),
        }


@dataclass(frozen=True)
class Answer(AnswerViews, Sequence):
    """The answer of a study: a SizeResult per (target, size), targets in name order,
    sizes in numeric order ('all' last). A sequence of them: `for item in answer`."""

    results: tuple[SizeResult, ...] = ()

    def __getitem__(self, index):
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def targets(self) -> list[str]:
        """Every target answered, in the answer's order, each once."""
        return list(dict.fromkeys(item.target for item in self.results))

    def with_similarity(self, similarity: dict[str, dict[str, float]]) -> Answer:
        """Each result with its target's similarity ({target: {arch: value}}; None for a
        target not measured)."""
        results = (replace(item, similarity=similarity.get(item.target)) for item in self)
        return Answer(tuple(results))

    def to_dicts(self) -> list[dict]:
        return [item.to_dict() for item in self.results]

    def to_json(self) -> str:
        """The answer's JSON: report/best_freeze.json, `study best-freeze --format json`."""
        return json.dumps(self.to_dicts(), indent=2)
