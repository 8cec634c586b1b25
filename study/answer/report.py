"""Tables of a study's answer, printed and logged (with the plots) to its parent run."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from study.answer.model import Answer, Entry, PretrainingGain
from study.answer.recommendation import verdict_cell
from study.answer.similarity import similarity_cell
from study.tracking import client as tracking

if TYPE_CHECKING:  # a type only: MLflow itself is imported by study.tracking
    from mlflow.tracking import MlflowClient


def _name(entry: Entry | None) -> str:
    return "-" if entry is None else entry.name


def _value(value: float, ci95: tuple[float, float] | None, sign: str = "") -> str:
    """`0.912 [0.890, 0.934]`; with sign "+", differences: `+0.012 [-0.003, +0.027]`."""
    text = f"{value:{sign}.3f}"
    return text if ci95 is None else f"{text} [{ci95[0]:{sign}.3f}, {ci95[1]:{sign}.3f}]"


def _accuracy(entry: Entry | None) -> str:
    return "-" if entry is None else _value(entry.test_acc, entry.ci95)


def _difference(entry: Entry | None) -> str:
    """best - entry, with its paired 95% interval (the entry's vs_best is entry - best)."""
    if entry is None or entry.vs_best is None:
        return "-"
    vs = entry.vs_best
    flipped = None if vs.ci95 is None else (-vs.ci95[1], -vs.ci95[0])
    return _value(-vs.diff, flipped, "+")


def gain_cell(gain: PretrainingGain | None) -> str:
    return "-" if gain is None else _value(gain.diff, gain.ci95, "+")


def top_group_cell(names: list[str], shown: int = 3) -> str:
    """The first few members of the top group (the JSON and --all list every one)."""
    if len(names) <= shown:
        return ", ".join(names) or "-"
    return f"{', '.join(names[:shown])} +{len(names) - shown} more"


def _columns(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def best_freeze_rows(answer: Answer) -> list[tuple[str, ...]]:
    """Per (target, size): the best strategy, the runner-up, the paired verdict, the top
    group and the target's similarity to the source; the header first. The text table and
    the Markdown answer (study.answer.descriptions) both render
    these cells, so the terminal and the MLflow run page say the same thing. A raced study
    (study.answer.race) has the recommendation second."""
    raced = any(item.race is not None for item in answer)
    rows = [
        (
            "target",
            "size/class",
            *(["recommended"] if raced else []),
            "best strategy",
            "test acc [95% CI]",
            "runner-up",
            "test acc [95% CI]",
            "best - runner-up [paired 95% CI]",
            "seeds",
            "verdict",
            "top group (Holm, 5%)",
            "pretrained - scratch [paired 95% CI]",
            "similarity to source",
        )
    ]
    for item in answer:
        runner_up = item.runner_up
        rows.append(
            (
                item.target,
                item.size,
                *([item.recommendation or "-"] if raced else []),
                _name(item.best),
                _accuracy(item.best),
                _name(runner_up),
                _accuracy(runner_up),
                _difference(runner_up),
                str(item.best.seeds),
                verdict_cell(item),
                top_group_cell(item.top_group),
                gain_cell(item.pretraining_gain),
                similarity_cell(item.similarity),
            )
        )
    return rows


def best_freeze_table(answer: Answer) -> str:
    return _columns(best_freeze_rows(answer))


def ranking_table(answer: Answer) -> str:
    """Every confirmed (architecture, strategy label) per size, best first, with the paired
    difference to the best and whether it is in the top group."""
    rows = [
        (
            "target",
            "size/class",
            "rank",
            "strategy",
            "b",
            "test acc [95% CI]",
            "best - this [paired 95% CI]",
            "Holm p",
            "top group",
            "seeds",
            "candidate (val acc)",
        )
    ]
    for item in answer:
        for rank, entry in enumerate(item.ranking, start=1):
            vs = entry.vs_best
            rows.append(
                (
                    item.target,
                    item.size,
                    str(rank),
                    _name(entry),
                    "" if entry.freeze is None else str(entry.freeze),
                    _accuracy(entry),
                    _difference(entry),
                    "-" if vs is None else f"{vs.p_holm:.3f}",
                    "yes" if entry.top_group else "no",
                    str(entry.seeds),
                    candidate_cell(entry),
                )
            )
    return _columns(rows)


def candidate_cell(entry: Entry) -> str:
    """`2 of 3 (0.751)`: which of the label's confirmed candidates answers, and its mean
    validation accuracy over the seeds; `1 of 1` where the search's best was the only one."""
    number, values = entry.candidate, entry.candidates_val_acc
    val = values[str(number)]
    return f"{number} of {len(values)}" + ("" if val is None else f" ({val:.3f})")


# The pictures of the answer, at the run's artifact root: the first thing the run page's
# Artifacts tab lists (and previews); tables and JSON go one level down, under report/.
PICTURES = (
    "answer.png",
    "accuracy_by_boundary.png",
    "accuracy_by_size.png",
    "freeze_fraction_by_size.png",
)


def log_report(client: MlflowClient, parent_run_id: str, answer: Answer, rows: list[dict]) -> None:
    from study.answer.plots import (
        answer_figure,
        boundary_figure,
        freeze_fraction_figure,
        size_figure,
    )

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "report").mkdir()
        (folder / "report" / "best_freeze.txt").write_text(best_freeze_table(answer) + "\n")
        (folder / "report" / "ranking.txt").write_text(ranking_table(answer) + "\n")
        (folder / "report" / "best_freeze.json").write_text(answer.to_json())
        (folder / "report" / "confirm_runs.json").write_text(json.dumps(rows, indent=2))
        if rows:
            drawers = (answer_figure, boundary_figure, size_figure, freeze_fraction_figure)
            pictures = dict(zip(PICTURES, drawers, strict=True))
            for name, draw in pictures.items():
                draw(answer, folder / name)
        tracking.log_folder(client, parent_run_id, folder, None)


def log_plan_error(
    client: MlflowClient, parent_run_id: str, seconds: dict, trial_runs: list, log=print
) -> None:
    """The plan's error (study.answer.plan_error: planned_* params vs `seconds` per phase
    and the study's `trial_runs`), printed and logged as report/plan_error.txt."""
    from study.answer.plan_error import plan_error_lines

    params = tracking.get_run(client, parent_run_id).data.params
    phases = Counter(run.data.tags.get(tracking.TAG_PHASE) for run in trial_runs)
    trials = {phase: phases[phase] for phase in ("search", "confirm")}
    lines = plan_error_lines(params, seconds, trials)
    for line in lines:
        log(line)
    if lines:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / tracking.PLAN_ERROR_ARTIFACT).write_text("\n".join(lines) + "\n")
            tracking.log_folder(client, parent_run_id, Path(folder), "report")
