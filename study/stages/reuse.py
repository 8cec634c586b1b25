"""The confirm phase's runs on the search's own subset, taken from the search.

The search trains every configuration on seed 0's subset (study.stages.search), and the
confirm phase trains its chosen ones on seeds 0, 1, ...: on seed 0, the same configuration
on the same subset with the same seed, which is the search trial again. So that trial's
run is written as the confirm run (study.tracking.copies, tagged `reused_from`) instead of
being trained a second time: in the default study, half of the race's first round. With
`answer.reuse_search_runs: false` it is trained again (the design before, kept to measure
against: bench/time_to_answer.py).

Seed 0 is also the subset the search chose each configuration on; README (the default
study's answer) measured that this does not tilt the race (trained again or copied, seed
0 gives the same numbers).
"""

from __future__ import annotations

import json

from ray.tune.result import TRIAL_ID  # the Ray trial id in each result

from search_spaces.strategies import strategy_label
from study.stages.context import RunContext
from study.tracking import client as tracking
from study.tracking import copies
from study.tracking.trial_logger import run_name
from trainables.contract import Key, is_completed

_NOT_THE_TRIAL = (Key.PHASE, Key.CANDIDATE, Key.OPTUNA_TRIAL)  # the driver's bookkeeping


def _trial_of(config: dict) -> str:
    """What a trial trains, as text: its config without the driver's bookkeeping."""
    kept = {k: v for k, v in config.items() if k not in _NOT_THE_TRIAL}
    return json.dumps(kept, sort_keys=True, default=str)


def search_twins(results) -> dict[str, str]:
    """What each search trial of `results` that ran all its steps trained (as `_trial_of`
    writes it) -> its Ray trial id. One ASHA stopped early trained less than its confirm
    trial would, and one rebuilt from Optuna after a resume (study.tuning.searcher's
    RecoveredResult) names no Ray trial: neither has a twin; theirs train again."""
    return {
        _trial_of(result.config): result.metrics[TRIAL_ID]
        for result in results
        if not result.error
        and is_completed(result.metrics or {})
        and TRIAL_ID in (result.metrics or {})
    }


def twin_of(config: dict, twins: dict[str, str]) -> str | None:
    """The Ray id of the search trial that trained what confirm `config` trains, if any:
    only on the search's seed (the seed is part of what a trial trains)."""
    return twins.get(_trial_of(config))


def reuse_search_runs(ctx: RunContext, configs: list[dict], twins: dict[str, str]) -> list[dict]:
    """Write the confirm run of each of `configs` whose search twin has a finished run, unless
    a driver before a resume wrote it already; returns the configs still to train."""
    twinned = [(config, trial) for config in configs if (trial := twin_of(config, twins))]
    if not twinned:  # a later round: no seed 0
        return configs
    confirm_runs = tracking.child_runs(ctx.client, ctx.parent, phase="confirm")
    copies.delete_unfinished_copies(ctx.client, confirm_runs)
    written = {  # by the search run and the candidate: one search trial may be two
        (run.data.tags.get(tracking.TAG_REUSED_FROM), tracking.run_candidate(run.data.tags))
        for run in confirm_runs
        if run.info.status == "FINISHED"
    }
    searched = copies.search_runs_by_trial(ctx.client, ctx.parent)
    taken = set()
    for config, trial in twinned:
        source = searched.get(trial)
        if source is None:  # no finished run of it in the store: trained again
            continue
        taken.add(id(config))
        if (source.info.run_id, str(config[Key.CANDIDATE])) in written:
            continue
        label = strategy_label(config[Key.STRATEGY], config[Key.FREEZE])
        name = run_name(config, label, f"from-search-{trial}")
        copies.copy_as_confirm(ctx.client, source, int(config[Key.CANDIDATE]), name)
    return [config for config in configs if id(config) not in taken]
