"""Which strategy wins for each target at each size: read back from the tracking store.

Reads the confirm-phase child runs of a study's parent run and ranks strategies by
mean test accuracy over seeds, per (target, size). Nothing here writes.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import TYPE_CHECKING

from study.answer.model import Answer, Entry, FreezeFraction, PretrainingGain, SizeResult, VsBest
from study.answer.paired import ALPHA, PairedDifference, holm, mean_interval, paired_difference
from study.answer.race import RaceRules, races
from study.errors import NoStudyFound
from study.tracking import client as t
from trainables.contract import parse_size

if TYPE_CHECKING:  # a type only: MLflow itself is imported by study.tracking
    from mlflow.tracking import MlflowClient


def size_order(size: str) -> tuple[int, int]:
    return (1, 0) if parse_size(size) is None else (0, int(size))


def latest_study_run(client: MlflowClient, experiment: str | None = None):
    """The most recent finished study (parent) run, in `experiment` or in any experiment."""
    ids = t.experiment_ids(client, experiment)
    if experiment is not None and not ids:
        raise NoStudyFound(f"no experiment named {experiment!r}{_close_names(client, experiment)}")
    run = t.latest_study_run(client, ids, status="FINISHED")
    if run is None:
        where = f"experiment {experiment!r}" if experiment else "this store"
        raise NoStudyFound(f"no finished study in {where}; run `study run` first")
    return run


def _close_names(client: MlflowClient, experiment: str) -> str:
    """Only names the user could have meant: a shared store's other studies are not listed."""
    import difflib

    names = t.experiment_names(client)
    close = difflib.get_close_matches(experiment, names, n=5, cutoff=0.6)
    if close:
        return f"; did you mean {', '.join(close)}?"
    return f" (and no name close to it among the {len(names)} studies in this store)"


def strategy_family(strategy: str) -> str:
    """The answer's family of a strategy (the registry's): the classical heads are one."""
    from search_spaces.strategies import get_strategy

    return get_strategy(strategy).family


def study_confirm_rows(client: MlflowClient, parent_run_id: str) -> list[dict]:
    """One row per finished confirm trial of the study: target, dataset, size, seed, arch,
    strategy (with its boundary), test_acc."""
    rows = []
    for run in t.child_runs(client, parent_run_id, phase="confirm", status="FINISHED"):
        tags, metrics = run.data.tags, run.data.metrics
        if t.METRIC_TEST_ACC not in metrics:
            continue
        rows.append(
            {
                # Runs of studies before targets had names: the dataset named the target.
                "target": tags.get(t.TAG_TARGET) or tags[t.TAG_DATASET],
                "dataset": tags[t.TAG_DATASET],
                "size": tags[t.TAG_SIZE],
                "seed": int(tags[t.TAG_SEED]),
                "arch": tags[t.TAG_ARCH],
                "strategy": tags[t.TAG_STRATEGY_LABEL],
                "family": strategy_family(tags[t.TAG_STRATEGY]),
                "freeze": int(tags[t.TAG_FREEZE_BOUNDARY]),
                "freeze_frac": float(tags[t.TAG_FREEZE_FRAC]),
                "candidate": int(t.run_candidate(tags)),
                "val_acc": metrics.get(t.METRIC_BEST_VAL_ACC),
                "test_acc": metrics[t.METRIC_TEST_ACC],
                "trainable_params": metrics.get(t.METRIC_TRAINABLE_PARAMS),
                "train_seconds": metrics.get(t.METRIC_TRAIN_SECONDS),
            }
        )
    return rows


def target_of(row: dict) -> str:
    return row.get("target") or row["dataset"]


def chosen_candidate(candidates: dict[int, dict[int, dict]]) -> int:
    """Of a label's confirmed candidates ({candidate: {seed: row}}), the one with the best
    mean validation accuracy over its seeds (never test accuracy); one with fewer finished
    seeds only wins when none has more, and between equals the search's better one."""

    def rank(number: int) -> tuple:
        by_seed = candidates[number]
        return (len(by_seed), mean_val(by_seed) or 0.0, -number)

    return max(candidates, key=rank)


def rank_strategies(rows: list[dict]) -> dict[tuple[str, str], list[Entry]]:
    """Per (target, size): every (architecture, strategy label) with its accuracy on each
    seed, the mean and its 95% interval, sorted by mean test accuracy, best first. A label
    confirmed with several candidate configurations is represented by the one
    `chosen_candidate` picks on validation accuracy."""
    grouped: dict[tuple, dict[int, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    datasets: dict[str, str] = {}
    for row in rows:
        datasets[target_of(row)] = row["dataset"]
        key = (target_of(row), row["size"], row["arch"], row["strategy"])
        grouped[key][row.get("candidate", 1)][int(row["seed"])] = row
    ranked: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for (target, size, arch, strategy), candidates in grouped.items():
        entry = _entry(arch, strategy, candidates, datasets[target])
        ranked[(target, size)].append(entry)
    for entries in ranked.values():
        # A raced study's dropped labels have fewer seeds: those that ran every seed first.
        entries.sort(key=lambda e: (-e.seeds, -e.test_acc, e.arch, e.strategy))
    return ranked


def _entry(arch: str, strategy: str, candidates: dict[int, dict[int, dict]], dataset: str) -> Entry:
    """The ranking's entry of one (architecture, label): its chosen candidate's seeds."""
    chosen = chosen_candidate(candidates)
    rows_by_seed = candidates[chosen]
    by_seed = {seed: rows_by_seed[seed]["test_acc"] for seed in sorted(rows_by_seed)}
    accs = list(by_seed.values())
    some = next(iter(rows_by_seed.values()))
    return Entry(
        arch=arch,
        strategy=strategy,
        family=some.get("family"),
        freeze=some.get("freeze"),
        freeze_frac=some["freeze_frac"],
        test_acc=statistics.fmean(accs),
        test_acc_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
        ci95=mean_interval(accs),
        seeds=len(accs),
        per_seed={str(seed): acc for seed, acc in by_seed.items()},
        dataset=dataset,
        candidate=chosen,
        candidates_val_acc={
            str(number): mean_val(candidates[number]) for number in sorted(candidates)
        },
    )


def mean_val(by_seed: dict[int, dict]) -> float | None:
    vals = [row["val_acc"] for row in by_seed.values() if row.get("val_acc") is not None]
    return statistics.fmean(vals) if vals else None


def _holm_against(best: Entry, others: list[Entry]) -> list[tuple[PairedDifference, float]]:
    """Each of `others` minus `best`, paired over seeds, with its p-value Holm-adjusted
    over these comparisons (no test possible, under 2 common seeds: p = 1, not separable)."""
    diffs = [paired_difference(e.per_seed, best.per_seed) for e in others]
    adjusted = holm([1.0 if d.p_value is None else d.p_value for d in diffs])
    return list(zip(diffs, adjusted, strict=True))


def compare_with_best(entries: list[Entry]) -> list[Entry]:
    """The entries (best first) with `vs_best` for every one but the best: the paired
    difference (entry - best) over their common seeds, its 95% interval, the paired
    t-test's p-value, Holm-adjusted over all comparisons with the best, and whether the
    entry is in the top group (not distinguishable from the best at 5%). The best itself
    is in the top group."""
    best = entries[0].compared(None, True)
    compared = [best]
    for entry, (diff, p_holm) in zip(entries[1:], _holm_against(best, entries[1:]), strict=True):
        vs = VsBest(diff.mean, diff.ci95, diff.seeds, diff.p_value, p_holm)
        compared.append(entry.compared(vs, p_holm >= ALPHA))
    return compared


def clear_winner(entries: list[Entry]) -> bool | None:
    """True when the paired 95% interval of (best - runner-up) over seeds excludes 0;
    None when there is no runner-up or fewer than 2 common seeds to compare."""
    if len(entries) < 2:
        return None
    diff = paired_difference(entries[0].per_seed, entries[1].per_seed)
    return None if diff.ci95 is None else diff.excludes_zero


def pretraining_gain(entries: list[Entry]) -> PretrainingGain | None:
    """The best pretrained (architecture, label) against the best from-scratch one (the
    registry's StrategySpec.from_scratch), paired over seeds: what the source task is
    worth at this size (None without both kinds)."""
    pretrained = [e for e in entries if not e.from_scratch]
    scratch = [e for e in entries if e.from_scratch]
    if not pretrained or not scratch:
        return None
    diff = paired_difference(pretrained[0].per_seed, scratch[0].per_seed)
    return PretrainingGain(
        pretrained[0].name, scratch[0].name, diff.mean, diff.ci95, diff.excludes_zero
    )


def best_freeze_fraction(entries: list[Entry]) -> FreezeFraction | None:
    """Where to freeze, for one (target, size): among the fixed-boundary strategies of
    every architecture (the registry's StrategySpec.fixed_boundary: fine-tune all,
    freeze-b, linear probe), the freeze fraction b/B of the best by mean test accuracy,
    and the range of freeze fractions the seeds cannot tell from it (paired t against
    that best, Holm, 5%): the interval of the answer. None without fixed-boundary
    strategies."""
    boundary = [e for e in entries if e.fixed_boundary]
    if not boundary:
        return None
    best, others = boundary[0], boundary[1:]  # entries come best first
    compared = _holm_against(best, others)
    tied = [best] + [e for e, (_, p) in zip(others, compared, strict=True) if p >= ALPHA]
    fractions = [e.freeze_frac for e in tied]
    return FreezeFraction(best.freeze_frac, best.name, min(fractions), max(fractions))


def best_per_size(rows: list[dict], rules: RaceRules | None = None) -> Answer:
    """The answer: for every (target, size), the best (architecture, strategy label), the
    runner-up, the paired verdict (is the best clear of the runner-up, seed by seed?), the
    top group (every strategy indistinguishable from the best, Holm-corrected), the
    ranking of every strategy confirmed, and with `rules` the confirm race's verdict and
    recommendation (study.answer.race, on validation accuracy)."""
    ranked = rank_strategies(rows)
    decided = races(rows, rules) if rules is not None else {}
    results = []
    for target, size in sorted(ranked, key=lambda key: (key[0], size_order(key[1]))):
        entries = compare_with_best(ranked[(target, size)])
        results.append(
            SizeResult(
                target=target,
                dataset=entries[0].dataset,
                size=size,
                ranking=tuple(entries),  # every (architecture, strategy) confirmed, best first
                clear_winner=clear_winner(entries),
                pretraining_gain=pretraining_gain(entries),
                best_freeze_fraction=best_freeze_fraction(entries),
                race=decided.get((target, size)),
            )
        )
    return Answer(tuple(results))


def study_answer(client: MlflowClient, run) -> Answer:
    """The answer of study run `run` (an MLflow Run): best_per_size of its confirm runs,
    each (target, size) with its target's similarity to the source (study.answer.similarity)."""
    from study.answer.similarity import attach_similarity, read_similarity

    rules = run.data.params.get(t.PARAM_RACE_RULES)
    rows = study_confirm_rows(client, run.info.run_id)
    answer = best_per_size(rows, RaceRules.from_json(rules) if rules else None)
    return attach_similarity(answer, read_similarity(run))
