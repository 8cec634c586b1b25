"""Which strategy wins at each target dataset size: read back from the tracking store.

Reads the confirm-phase child runs of a study's parent run and ranks strategies by
mean test accuracy over seeds. Nothing here writes.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from mlflow.tracking import MlflowClient

from study import tracking as t


class NoStudyFound(LookupError):
    """The store holds no finished study matching the request."""


def size_order(size: str) -> tuple[int, int]:
    return (1, 0) if size == "all" else (0, int(size))


def latest_study_run(client: MlflowClient, experiment: str | None = None):
    """The most recent finished study (parent) run, in `experiment` or in any experiment."""
    ids = t.experiment_ids(client, experiment)
    if experiment is not None and not ids:
        raise NoStudyFound(
            f"no experiment named {experiment!r}; studies in this store: "
            f"{', '.join(t.experiment_names(client)) or 'none'}"
        )
    run = t.latest_study_run(client, ids, status="FINISHED")
    if run is None:
        where = f"experiment {experiment!r}" if experiment else "this store"
        raise NoStudyFound(f"no finished study in {where}; run `study run` first")
    return run


def study_confirm_rows(client: MlflowClient, parent_run_id: str) -> list[dict]:
    """One row per finished confirm trial of the study: dataset, size, seed, arch,
    strategy (with its boundary), test_acc."""
    rows = []
    for run in t.child_runs(client, parent_run_id, phase="confirm", status="FINISHED"):
        tags, metrics = run.data.tags, run.data.metrics
        if t.METRIC_TEST_ACC not in metrics:
            continue
        rows.append(
            {
                "dataset": tags[t.TAG_DATASET],
                "size": tags[t.TAG_SIZE],
                "seed": int(tags[t.TAG_SEED]),
                "arch": tags[t.TAG_ARCH],
                "strategy": tags[t.TAG_STRATEGY_LABEL],
                "freeze_frac": float(tags[t.TAG_FREEZE_FRAC]),
                "test_acc": metrics[t.METRIC_TEST_ACC],
            }
        )
    return rows


def confidence_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval for the mean over seeds (few seeds: the normal one is too narrow)."""
    from scipy.stats import t as student_t

    mean = statistics.fmean(values)
    half = float(student_t.ppf(0.5 + level / 2, len(values) - 1)) * statistics.stdev(values)
    half /= len(values) ** 0.5
    return (mean - half, mean + half)


def clear_winner(best: dict, runner_up: dict | None) -> bool | None:
    """False when the two 95% intervals overlap; None when there is nothing to compare."""
    if runner_up is None or best["ci95"] is None or runner_up["ci95"] is None:
        return None
    return best["ci95"][0] > runner_up["ci95"][1]


def rank_strategies(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Per (dataset, size): strategies sorted by mean test accuracy, best first."""
    grouped: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        grouped[(row["dataset"], row["size"], row["arch"], row["strategy"])].append(row["test_acc"])
    ranked: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (dataset, size, arch, strategy), accs in grouped.items():
        ranked[(dataset, size)].append(
            {
                "arch": arch,
                "strategy": strategy,
                "test_acc": statistics.fmean(accs),
                "test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "ci95": list(confidence_interval(accs)) if len(accs) > 1 else None,
                "seeds": len(accs),
            }
        )
    for entries in ranked.values():
        entries.sort(key=lambda e: (-e["test_acc"], e["arch"], e["strategy"]))
    return ranked


def best_per_size(rows: list[dict]) -> list[dict]:
    """The answer: for every dataset and size, the best strategy and the runner-up,
    whether the best one's 95% interval lies clear of the runner-up's, and the ranking of
    every strategy confirmed."""
    ranked = rank_strategies(rows)
    answer = []
    for dataset, size in sorted(ranked, key=lambda key: (key[0], size_order(key[1]))):
        entries = ranked[(dataset, size)]
        answer.append(
            {
                "dataset": dataset,
                "size": size,
                "best": entries[0],
                "runner_up": entries[1] if len(entries) > 1 else None,
                "clear_winner": clear_winner(entries[0], entries[1] if len(entries) > 1 else None),
                "ranking": entries,  # every (architecture, strategy) confirmed, best first
            }
        )
    return answer
