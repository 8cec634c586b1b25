"""The confirm phase: the best search configurations of each strategy, on every seed.

The best configuration per (target, size, architecture, label) by validation accuracy is
retrained on every seed's subset; where `search.confirm_candidates` asks for several (small
subsets, whose seed-0 choice is noisy), the label's few best are, and the answer keeps the
one with the best mean validation accuracy over the seeds (study.answer.query). The answer is
the mean test accuracy over those seeds, so test accuracy is only ever read, never used
to choose.
"""

from __future__ import annotations

from collections.abc import Callable

from search_spaces.strategies import strategy_label
from search_spaces.transfer import Label
from study.answer.descriptions import candidates_text, selection_note
from study.stages.context import RunContext
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


def run_confirm(ctx: RunContext, results: list) -> None:
    """Run the confirm phase (on the search phase's `results`) until every configuration
    has a finished run.

    A restored confirm experiment only knows the trials of Ray's last snapshot: trials the
    killed driver had queued after it are lost with it. MLflow says which configurations
    finished, so the rest run again in a fresh experiment (`-confirm-1`, ...), which a
    later resume restores in turn.
    """
    config, log = ctx.config, ctx.log
    to_confirm = confirm_configs(results, target_seeds(config), config.search.candidates_for)
    seeds = "/".join(sorted({str(target.seeds) for target in config.target_list()}))
    log(
        f"confirm phase: {len(to_confirm)} trials ({seeds} seeds x "
        f"{candidates_text(config.search)}, per (size, architecture, strategy label)"
        + (" of each target)" if config.several_targets() else ")")
        + selection_note(config.search)
    )
    pending, attempt = to_confirm, 0
    while pending and attempt <= MAX_CONFIRM_TOPUPS:
        name = f"{ctx.key}-confirm" + (f"-{attempt}" if attempt else "")
        if attempt:
            log(f"confirm phase: {len(pending)} configurations have no finished run; running them")
        callbacks = [ctx.logger, PhaseProgress("confirm", len(pending), ctx.verbose)]
        tuner = confirm_tuner(
            config, name, ctx.targets, ctx.sources, pending, callbacks, ctx.verbose
        )
        tuner.fit()
        pending, attempt = unconfirmed(ctx.client, ctx.parent, to_confirm), attempt + 1
