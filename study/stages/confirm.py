"""The confirm phase: the best search configurations of each strategy, on every seed.

The best configuration per (target, size, architecture, label) by validation accuracy is
retrained on every seed's subset; where `search.confirm_candidates` asks for several (small
subsets, whose seed-0 choice is noisy), the label's few best are, and the answer keeps the
one with the best mean validation accuracy over the seeds (study.answer.query). The answer is
the mean test accuracy over those seeds, so test accuracy is only ever read, never used
to choose.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from search_spaces.strategies import get_strategy, strategy_label
from search_spaces.transfer import Label
from study.answer.descriptions import candidates_text, selection_note
from study.answer.query import study_confirm_rows
from study.answer.race import RaceRules, RaceState, replay
from study.stages.context import RunContext
from study.stages.reuse import reuse_search_runs, search_twins
from study.tracking import client as tracking
from study.tuning.progress import PhaseProgress
from study.tuning.searcher import OBJECTIVE
from study.tuning.tuner import confirm_tuner
from trainables.contract import Key, is_completed, parse_size

MAX_CONFIRM_TOPUPS = 3  # reruns of lost confirm trials before the study reports what it has
CONFIRM_KEY_TAGS = (
    tracking.TAG_TARGET,
    tracking.TAG_SIZE,
    tracking.TAG_SEED,
    tracking.TAG_ARCH,
    tracking.TAG_STRATEGY_LABEL,
)  # and the candidate (tracking.run_candidate)


def confirm_configs(
    results, seeds: int | dict[str, int], candidates: Callable[[int | None], int] = lambda _: 1
) -> list[dict]:
    """The `candidates(size)` best search configurations per (target, size, architecture,
    strategy label), each once per seed of its target (`seeds`: a count, or one per target
    name), numbered by `Key.CANDIDATE` from 1 (the best).

    Trials that ran to the end rank above trials ASHA stopped early; within each group the
    best validation accuracy wins, and between equals the earlier trial (so the choice does
    not depend on the order results arrived in). A label whose every trial was stopped
    early is still confirmed (with its best stopped trials), so every label gets an answer.
    """
    ranked: dict[tuple, list[tuple[tuple, dict]]] = {}
    for result in results:
        metrics = result.metrics or {}
        if result.error or OBJECTIVE not in metrics:
            continue
        config = result.config
        label = strategy_label(config[Key.STRATEGY], config[Key.FREEZE])
        key = (str(config.get(Key.TARGET, "")), str(config[Key.SIZE]), config[Key.ARCH], label)
        earlier = -int(config.get(Key.OPTUNA_TRIAL, 0))
        rank = (is_completed(metrics), metrics[OBJECTIVE], earlier)
        ranked.setdefault(key, []).append((rank, config))
    chosen = []
    for key in sorted(ranked):
        best = sorted(ranked[key], key=lambda item: item[0], reverse=True)
        count = seeds if isinstance(seeds, int) else seeds[key[0]]
        for number, (_, config) in enumerate(
            best[: candidates(parse_size(best[0][1][Key.SIZE]))], start=1
        ):
            base = {k: v for k, v in config.items() if k != Key.OPTUNA_TRIAL}
            chosen += [
                {**base, Key.PHASE: "confirm", Key.CANDIDATE: number, Key.SEED: seed}
                for seed in range(count)
            ]
    return chosen


def target_seeds(config) -> dict[str, int]:
    """Seeds of the confirm phase per target name."""
    return {target.key: target.seeds for target in config.target_list()}


def confirm_budget(config, labels: list[Label]) -> int:
    """Confirm trials in all: every (target, size, architecture, label) on every seed, as
    many times as its size has candidates; `labels`: the study's
    (study.stages.context.search_labels)."""
    per_size = [
        target.seeds * config.search.candidates_for(size) for target, size in config.target_sizes()
    ]
    return len(labels) * sum(per_size)


def confirm_key(config: dict) -> tuple[str, ...]:
    label = strategy_label(config[Key.STRATEGY], config[Key.FREEZE])
    target, size, seed = (str(config.get(k, "")) for k in (Key.TARGET, Key.SIZE, Key.SEED))
    return (target, size, seed, config[Key.ARCH], label, str(config[Key.CANDIDATE]))


def unconfirmed(client, parent: str, configs: list[dict]) -> list[dict]:
    """The confirm configurations no trial has finished or failed on yet (lost ones)."""
    handled = {
        (
            *(run.data.tags.get(tag, "") for tag in CONFIRM_KEY_TAGS),
            tracking.run_candidate(run.data.tags),
        )
        for run in tracking.child_runs(client, parent, phase="confirm")
        if run.info.status in ("FINISHED", "FAILED")
    }
    return [c for c in configs if confirm_key(c) not in handled]


def contender_of(config: dict) -> str:
    """The race's name of a confirm configuration (study.answer.race.contender)."""
    label = strategy_label(config[Key.STRATEGY], config[Key.FREEZE])
    return f"{config[Key.ARCH]} {label} #{config[Key.CANDIDATE]}"


def race_key(config: dict) -> tuple[str, str]:
    return (str(config.get(Key.TARGET, "")), str(config[Key.SIZE]))


def is_reference(config: dict) -> bool:
    """The search's best from-scratch configuration of each architecture runs every round
    of its race, dropped or not: what pretraining is worth (study.answer.query's
    pretraining_gain) is paired over the seeds the best pretrained one has."""
    return get_strategy(config[Key.STRATEGY]).from_scratch and int(config[Key.CANDIDATE]) == 1


def round_configs(every: list[dict], states: dict, rules: RaceRules, look: int) -> list[dict]:
    """The configurations of round `look` (0-based): the seeds of that look of every
    contender still in a race that is not decided and has such a look."""
    chosen = []
    for config in every:
        key, seed = race_key(config), int(config[Key.SEED])
        seeds, state = rules.looks.get(key[0], ()), states[key]
        racing = contender_of(config) in state.alive or is_reference(config)
        if state.decided or look >= len(seeds) or not racing:
            continue
        if (seeds[look - 1] if look else 0) <= seed < seeds[look]:
            chosen.append(config)
    return chosen


def run_confirm(ctx: RunContext, results: list) -> None:
    """Race the search phase's best configurations (`results`) on the seeds (module doc):
    a round per look, each a Ray experiment `-confirm-r<look>` run until every
    configuration has a finished run; after each, the races are replayed from MLflow
    (study.answer.race), so a resumed study takes the decisions the killed one took.
    """
    config, log = ctx.config, ctx.log
    rules = RaceRules.of(config)
    every = confirm_configs(results, target_seeds(config), config.search.candidates_for)
    states = {race_key(c): RaceState(alive=set()) for c in every}
    for c in every:
        states[race_key(c)].alive.add(contender_of(c))
    log(
        f"confirm phase: {len(states)} races of {len(set(map(contender_of, every)))} "
        f"contenders ({candidates_text(config.search)} per (size, architecture, strategy "
        f"label)), looks at {looks_text(rules)} seeds; at most {len(every)} trials"
        + selection_note(config.search)
    )
    twins = search_twins(results) if config.answer.reuse_search_runs else {}
    for look in range(max(len(seeds) for seeds in rules.looks.values())):
        pending = round_configs(every, states, rules, look)
        if not pending:
            break
        to_train = reuse_search_runs(ctx, pending, twins) if twins else pending
        reused = len(pending) - len(to_train)
        log(
            f"confirm round {look + 1}: {len(pending)} trials"
            + (f", {reused} of them the search's own (seed 0), not trained again" if reused else "")
        )
        _run_round(ctx, f"{ctx.key}-confirm-r{look + 1}", to_train)
        by_race = defaultdict(list)  # one read of the store per round, grouped once
        for row in study_confirm_rows(ctx.client, ctx.parent):
            by_race[(row["target"], row["size"])].append(row)
        for key in states:
            if not states[key].decided:
                states[key] = replay(by_race[key], *key, rules, look + 1)
        _after_round(ctx, states, look)


def _standing(state: RaceState) -> str:
    race = state.race
    if state.decided:
        return f"{len(state.alive)} in; {race.verdict}: {race.recommendation}"
    if state.futile:  # the estimate is said once, at the look that stopped the race
        needed = f"about {race.seeds_needed}" if race.seeds_needed else "too many"
        why = (
            f"{needed} seeds would likely decide: "
            if race.rounds[-1].look == race.stopped_at
            else ""
        )
        return (
            f"{len(race.survivors)} in; undecided, {why}raced no further, "
            f"only {race.best} and the references run on"
        )
    return f"{len(state.alive)} in; racing on"


def looks_text(rules: RaceRules) -> str:
    return " / ".join(sorted({"-".join(map(str, seeds)) for seeds in rules.looks.values()}))


def _run_round(ctx: RunContext, name: str, configs: list[dict]) -> None:
    """Run `configs` until each has a finished run: a restored experiment only knows the
    trials of Ray's last snapshot, so the ones a killed driver had queued run again in a
    fresh experiment (`<name>-1`, ...), which a later resume restores in turn."""
    pending, attempt = configs, 0
    while pending and attempt <= MAX_CONFIRM_TOPUPS:
        if attempt:
            ctx.log(
                f"confirm phase: {len(pending)} configurations have no finished run; running them"
            )
        callbacks = [ctx.logger, PhaseProgress("confirm", len(pending), ctx.verbose)]
        tuner = confirm_tuner(
            ctx.config,
            name + (f"-{attempt}" if attempt else ""),
            ctx.targets,
            ctx.sources,
            pending,
            callbacks,
            ctx.verbose,
        )
        tuner.fit()
        pending, attempt = unconfirmed(ctx.client, ctx.parent, configs), attempt + 1


def _after_round(ctx: RunContext, states: dict, look: int) -> None:
    """Say what the round decided, and tag the runs of the contenders it dropped."""
    dropped: dict[tuple, tuple[int, str]] = {}
    for (target, size), state in sorted(states.items()):
        this = [r for r in state.rounds if r.look == look + 1]
        if not this or state.race is None:
            continue
        for name, reason in this[0].dropped:
            dropped[(target, size, name)] = (look + 1, reason)
        where = f"{target} " if ctx.config.several_targets() else ""
        ctx.log(f"  {where}{size} per class: {len(this[0].dropped)} out, {_standing(state)}")
    if dropped:
        tracking.tag_dropped(ctx.client, ctx.parent, dropped)
