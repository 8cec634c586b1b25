"""Tables and plots of a study's answer, printed and logged to its parent run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from study import tracking
from study.query import rank_strategies, size_order

VERDICTS = {True: "clear winner", False: "no clear winner", None: "-"}


def _cell(entry: dict | None) -> tuple[str, str]:
    if entry is None:
        return "-", "-"
    accuracy = f"{entry['test_acc']:.3f}"
    if entry["ci95"] is not None:
        low, high = entry["ci95"]
        accuracy += f" [{low:.3f}, {high:.3f}]"
    return f"{entry['arch']} {entry['strategy']}", accuracy


def best_freeze_table(answer: list[dict]) -> str:
    header = (
        "dataset",
        "size/class",
        "best strategy",
        "test acc [95% CI]",
        "runner-up",
        "test acc [95% CI]",
        "seeds",
        "verdict",
    )
    rows = [header]
    for item in answer:
        best, best_acc = _cell(item["best"])
        second, second_acc = _cell(item["runner_up"])
        rows.append(
            (
                item["dataset"],
                item["size"],
                best,
                best_acc,
                second,
                second_acc,
                str(item["best"]["seeds"]),
                VERDICTS[item["clear_winner"]],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def ranking_table(answer: list[dict]) -> str:
    """Every confirmed (architecture, strategy) per dataset size, best first."""
    rows = [("dataset", "size/class", "rank", "strategy", "test acc [95% CI]", "seeds")]
    for item in answer:
        for rank, entry in enumerate(item.get("ranking", [item["best"]]), start=1):
            name, accuracy = _cell(entry)
            rows.append(
                (item["dataset"], item["size"], str(rank), name, accuracy, str(entry["seeds"]))
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def accuracy_plot(rows: list[dict], path: Path) -> None:
    """Mean test accuracy against examples per class, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = rank_strategies(rows)
    lines: dict[str, list[tuple[str, float]]] = {}
    for (dataset, size), entries in ranked.items():
        for entry in entries:
            label = f"{dataset}: {entry['arch']} {entry['strategy']}"
            lines.setdefault(label, []).append((size, entry["test_acc"]))
    sizes = sorted({size for (_, size) in ranked}, key=size_order)
    figure, axes = plt.subplots(figsize=(8, 5))
    for label, points in sorted(lines.items()):
        points.sort(key=lambda point: size_order(point[0]))
        axes.plot(
            [sizes.index(s) for s, _ in points], [a for _, a in points], marker="o", label=label
        )
    axes.set_xticks(range(len(sizes)), sizes)
    axes.set_xlabel("training examples per class")
    axes.set_ylabel("mean test accuracy over seeds")
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def log_report(
    client: MlflowClient, parent_run_id: str, answer: list[dict], rows: list[dict]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "best_freeze.txt").write_text(best_freeze_table(answer) + "\n")
        (folder / "ranking.txt").write_text(ranking_table(answer) + "\n")
        (folder / "best_freeze.json").write_text(json.dumps(answer, indent=2))
        (folder / "confirm_runs.json").write_text(json.dumps(rows, indent=2))
        if rows:
            accuracy_plot(rows, folder / "accuracy_by_size.png")
        tracking.log_folder(client, parent_run_id, folder, "report")
