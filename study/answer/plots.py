"""Pictures of a study's answer (matplotlib, no display): logged to the parent run and
written by `study best-freeze --plot FILE`.

- by boundary: mean test accuracy against the freeze boundary b (0 = fine-tune all,
  B = linear probe), one line per dataset size with its 95% band, one panel per
  architecture: which layers to freeze, at each size, in one picture. The strategies
  drawn are the registry's fixed-boundary ones (StrategySpec.fixed_boundary), a line per
  sweep (StrategySpec.sweep: fine-tune all, freeze-b and linear probe are one), the
  sweep's families named in the legend where there are several;
- by size: mean test accuracy against training examples per class (log axis), one line
  per strategy family (its best member at each size, StrategySpec.family_title) with its
  95% band;
- freeze fraction: the best freeze fraction b/B against training examples per class (log
  axis), one line per target (labelled with its similarity to the source), the bars the
  fractions the seeds cannot tell from the best (study.answer.query.best_freeze_fraction).
"""

from __future__ import annotations

from pathlib import Path

from study.answer.model import Answer, Entry, SizeResult
from study.answer.query import size_order
from trainables.contract import ALL, parse_size


def _several_datasets(answer: Answer) -> bool:
    return len(answer.targets()) > 1


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


BAND_SEEDS = 3  # fewer: a t interval (on 2 seeds, 12.7 SEs wide) would cover the panel


def _band(axes, xs, entries: list[Entry], label, **style) -> None:
    """A line of mean test accuracies with its 95% band, clipped to [0, 1], where a point has
    BAND_SEEDS seeds or more; a point on fewer (a label the race dropped early, or one still
    in a race that raced no further) is hollow."""
    means = [e.test_acc for e in entries]
    (line,) = axes.plot(xs, means, marker="o", label=label, **style)
    banded = [e.ci95 is not None and e.seeds >= BAND_SEEDS for e in entries]
    few = [(x, m) for x, m, b in zip(xs, means, banded, strict=True) if not b]
    if few:
        axes.plot(  # its colour given: the colour cycle stays where the lines are
            *zip(*few, strict=True), linestyle="none", marker="o", color=line.get_color(),
            markerfacecolor="white", zorder=line.get_zorder() + 1,
        )  # fmt: skip
    if any(banded):
        rows = list(zip(entries, banded, means, strict=True))
        lows = [max(0.0, e.ci95[0]) if b else m for e, b, m in rows]
        highs = [min(1.0, e.ci95[1]) if b else m for e, b, m in rows]
        axes.fill_between(
            xs, lows, highs, where=banded, color=line.get_color(), alpha=0.15, linewidth=0
        )


def _size_value(size: str, largest: float) -> float:
    """Where a size sits on the log axis: 'all' one step past the largest number."""
    return largest * 2 if parse_size(size) is None else float(size)


def _sweeps(item: SizeResult, arch: str) -> list[list[Entry]]:
    """The points of `arch` by boundary at one (target, size): a list per sweep, by boundary;
    the sweeps in the order of their families' names."""
    sweeps: dict = {}
    for entry in item.ranking:
        if entry.arch == arch and entry.fixed_boundary:
            sweeps.setdefault(entry.sweep, []).append(entry)
    points = [sorted(entries, key=lambda e: e.freeze) for entries in sweeps.values()]
    return sorted(points, key=_sweep_name)


def _sweep_name(points: list[Entry]) -> str:
    """`finetune/freeze-b/linear-probe`: the families of a sweep's points, by boundary."""
    return "/".join(dict.fromkeys(str(e.family) for e in points))


def _several_sweeps(answer: Answer) -> bool:
    return len({e.sweep for item in answer for e in item.ranking if e.fixed_boundary}) > 1


def draw_by_boundary(answer: Answer, panels: list) -> None:
    from matplotlib.ticker import MaxNLocator

    archs = sorted({e.arch for item in answer for e in item.ranking})
    several_targets, several_sweeps = _several_datasets(answer), _several_sweeps(answer)
    for axes, arch in zip(panels, archs, strict=False):
        for item in answer:
            for points in _sweeps(item, arch):
                label = (ALL if parse_size(item.size) is None else f"{item.size}/class") + (
                    f" ({item.target})" if several_targets else ""
                )
                if several_sweeps:
                    label += f", {_sweep_name(points)}"
                _band(axes, [e.freeze for e in points], points, label)
        axes.set_title(arch)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("freeze boundary b (stages frozen; 0 = fine-tune all)")
        axes.set_ylabel("mean test accuracy over seeds")
        axes.grid(alpha=0.3)
    if panels:
        panels[-1].legend(title="training size", loc="upper left", bbox_to_anchor=(1.02, 1))


def draw_by_size(answer: Answer, axes) -> None:
    numbers = [float(i.size) for i in answer if parse_size(i.size) is not None] or [1.0]
    largest = max(numbers)
    families: dict[str, list[tuple[str, Entry]]] = {}
    for item in sorted(answer, key=lambda i: size_order(i.size)):
        best_of: dict[str, Entry] = {}
        for entry in item.ranking:  # best first: the first of a family is its best
            prefix = f"{item.target}: " if _several_datasets(answer) else ""
            best_of.setdefault(prefix + entry.family_title, entry)
        for family, entry in best_of.items():
            families.setdefault(family, []).append((item.size, entry))
    for family, points in sorted(families.items()):
        xs = [_size_value(size, largest) for size, _ in points]
        _band(axes, xs, [entry for _, entry in points], family)
    sizes = sorted({i.size for i in answer}, key=size_order)
    axes.set_xscale("log")
    axes.set_xticks([_size_value(s, largest) for s in sizes], sizes)
    axes.minorticks_off()
    axes.set_xlabel("training examples per class (log scale)")
    axes.set_ylabel("mean test accuracy over seeds")
    axes.set_title("best of each strategy family")
    axes.grid(alpha=0.3)
    axes.legend(title="strategy family", loc="upper left", bbox_to_anchor=(1.02, 1))


def _archs(answer: Answer) -> int:
    return max(1, len({e.arch for item in answer for e in item.ranking}))


def boundary_figure(answer: Answer, path: Path) -> None:
    plt = _pyplot()
    n = _archs(answer)
    figure, panels = plt.subplots(1, n, figsize=(4.5 * n + 2, 4.2), squeeze=False)
    draw_by_boundary(answer, list(panels[0]))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def size_figure(answer: Answer, path: Path) -> None:
    _one_panel(draw_by_size, answer, path, figsize=(8.5, 4.5))


def _one_panel(draw, answer: Answer, path: Path, figsize: tuple[float, float]) -> None:
    """A picture of one panel, drawn by `draw(answer, axes)`, saved to `path`."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=figsize)
    draw(answer, axes)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def answer_figure(answer: Answer, path: Path) -> None:
    """Both pictures in one file: the boundary panels above, the size curves below."""
    plt = _pyplot()
    n = _archs(answer)
    figure = plt.figure(figsize=(4.5 * n + 2, 8.8))
    grid = figure.add_gridspec(2, n)
    draw_by_boundary(answer, [figure.add_subplot(grid[0, i]) for i in range(n)])
    draw_by_size(answer, figure.add_subplot(grid[1, :]))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def draw_freeze_fraction(answer: Answer, axes) -> None:
    numbers = [float(i.size) for i in answer if parse_size(i.size) is not None] or [1.0]
    largest = max(numbers)
    by_target: dict[str, list[SizeResult]] = {}
    for item in sorted(answer, key=lambda i: size_order(i.size)):
        if item.best_freeze_fraction:
            by_target.setdefault(item.target, []).append(item)
    for offset, (target, items) in enumerate(sorted(by_target.items())):
        # Targets side by side around each size (a few percent on the log axis).
        shift = 1.0 + 0.04 * (offset - (len(by_target) - 1) / 2)
        xs = [_size_value(i.size, largest) * shift for i in items]
        fractions = [i.best_freeze_fraction for i in items]
        ys = [f.freeze_frac for f in fractions]
        errors = [
            [y - f.low for y, f in zip(ys, fractions, strict=True)],
            [f.high - y for y, f in zip(ys, fractions, strict=True)],
        ]
        axes.errorbar(
            xs,
            ys,
            yerr=errors,
            marker="o",
            capsize=4,
            label=_similarity_label(target, items[0].similarity),
        )
    sizes = sorted({i.size for i in answer}, key=size_order)
    axes.set_xscale("log")
    axes.set_xticks([_size_value(s, largest) for s in sizes], sizes)
    axes.minorticks_off()
    axes.set_ylim(-0.05, 1.05)
    axes.set_xlabel("training examples per class (log scale)")
    axes.set_ylabel("best freeze fraction b/B (0 = fine-tune all)")
    axes.set_title("where to freeze; bars: fractions not separable from the best (Holm, 5%)")
    axes.grid(alpha=0.3)
    axes.legend(title="target (similarity to source)", loc="upper left", bbox_to_anchor=(1.02, 1))


def _similarity_label(target: str, similarity: dict | None) -> str:
    if not similarity:
        return target
    values = ", ".join(
        f"{v:.2f}" if len(similarity) == 1 else f"{arch} {v:.2f}"
        for arch, v in sorted(similarity.items())
    )
    return f"{target} ({values})"


def freeze_fraction_figure(answer: Answer, path: Path) -> None:
    _one_panel(draw_freeze_fraction, answer, path, figsize=(9, 4.5))
