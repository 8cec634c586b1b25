"""What the MLflow UI says about a study, in Markdown: the question and the answer.

- `experiment_description(config)`: the experiment's description, what the study asks,
  its target, sizes, seeds, search space and how to rerun it.
- `study_markdown(run, answer)`: the parent run's description, the answer, led by a line
  per (target, size) with the best label and its verdict (`decision_lines`: the MLflow UI
  shows a description's first lines only, before "Show more"). It is the one
  builder of the Markdown answer: the run's description (study.stages.protocol) and `study
  best-freeze --format markdown` both call it, so the run page and the terminal show the
  same table; its cells are study.answer.report's, the same as the text table's.
"""

from __future__ import annotations

from study.answer.choose import points
from study.answer.model import Answer
from study.answer.recommendation import budget_lines, recommendation_line
from study.answer.report import PICTURES, best_freeze_rows
from study.tracking import client as tracking

# The wall-time metrics of a study run, in the order its phases run (study.stages.protocol).
PHASES = ("load", "pretrain", "similarity", "search", "confirm", "report")


def _range(pair) -> str:
    return f"{pair.low:g}..{pair.high:g}"


def candidates_text(search) -> str:
    """What the confirm phase retrains of each label (search: a SearchConfig): `the best
    configuration`, or per size bucket, `the best 3 configurations up to 2 per class, the
    best 1 configuration above`."""
    buckets = search.confirm_candidates
    if all(bucket.candidates == 1 for bucket in buckets):
        return "the best configuration"
    parts = []
    for index, bucket in enumerate(buckets):
        many = "s" if bucket.candidates > 1 else ""
        where = f" up to {bucket.up_to} per class" if bucket.up_to else " above" if index else ""
        parts.append(f"the best {bucket.candidates} configuration{many}{where}")
    return ", ".join(parts)


def selection_note(search) -> str:
    """How a label's candidates are decided between, where it has several ('' otherwise)."""
    several = any(bucket.candidates > 1 for bucket in search.confirm_candidates)
    return "; of a label's candidates, the best mean validation accuracy answers" if several else ""


def experiment_description(config, command: str | None = None) -> str:
    """What the study asks and how it is set up (config: a StudyConfig); `command` is how
    it was started (`study run --preset default`), when known."""
    search, source = config.search, config.source
    targets = config.target_list()
    weights = (
        "torchvision ImageNet weights"
        if source.weights == "torchvision"
        else f"pretrained here on {source.dataset} ({source.images} images, {source.epochs} "
        "epochs; experiment source-pretraining)"
    )
    rerun = f"`{command}`" if command else "`study run --config config.yaml`"
    return "\n".join(
        [
            f"**Question:** which layers of a pretrained CNN to freeze (and which head and "
            f"learning rates) when transferring to "
            f"{' and '.join(f'**{_dataset(t)}**' for t in targets)}, per number of "
            "training examples per class"
            + (
                ", and how that moves with the target's similarity to the source."
                if len(targets) > 1
                else "."
            ),
            "",
            *[line for target in targets for line in _target_lines(target, len(targets) > 1)],
            f"- Weights: {weights}",
            f"- Architectures: {', '.join(search.architectures)}",
            f"- Strategies: {', '.join(search.strategies)} (every freeze boundary its own label)",
            f"- Search space: lr {_range(search.lr)}, backbone_lr_mult "
            f"{_range(search.backbone_lr_mult)}, weight_decay {_range(search.weight_decay)}, "
            f"C {_range(search.C)} (logreg, svm), knn_k {_range(search.knn_k)} (knn); "
            f"lp-ft's probe C {config.training.probe_C}; the whole config is the "
            "`config.yaml` artifact of each study run",
            f"- Budget: {search.trials_per_label} trials per (size, architecture, strategy "
            f"label), then {candidates_text(search)} of each raced on the seeds: looks at "
            f"{', '.join(map(str, config.answer.looks)) or 'no seed count'} before the last, "
            f"the ones shown worse than the best dropped at each (validation accuracy; "
            f"equivalence margin {_margins(config.answer)}, alpha {config.answer.alpha})",
            "",
            "Each study is a parent run (its description is the answer, its pictures are "
            "artifacts); each trial a child run, its training subset under Dataset.",
            "",
            f"Rerun: {rerun} (or `study run --config config.yaml` with a study run's "
            f"artifact); the answer in a terminal: `study best-freeze --experiment "
            f"{config.name}`.",
        ]
    )


def _margins(answer) -> str:
    buckets = answer.equivalence_margin
    return (
        ", ".join(
            points(b.margin) + (f" up to {b.up_to} per class" if b.up_to else " above")
            for b in buckets
        )
        if len(buckets) > 1
        else points(buckets[0].margin)
    )


def _dataset(target) -> str:
    """A target's dataset as the UI shows it: a folder by its own name, never its path."""
    from trainables.datasets.registry import public_name  # torch: only where a study runs

    return public_name(target.dataset)


def _target_lines(target, named: bool) -> list[str]:
    """The bullet lines of one target (its name first when the study has several)."""
    sizes = ", ".join(str(size) for size in target.sizes)
    name = f" {target.key}:" if named else ""
    return [
        f"- Target{name} {_dataset(target)}, image size {target.image_size}, validation "
        f"{target.val_per_class} and test {target.test_per_class} images per class",
        f"- Sizes (training examples per class): {sizes}",
        f"- Seeds: {target.seeds} (seed s is the same training subset for every strategy)",
    ]


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    """A Markdown (GitHub / MLflow) table: the first row is the header."""

    def line(cells) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") or " " for cell in cells) + " |"

    return "\n".join([line(rows[0]), line("---" for _ in rows[0]), *map(line, rows[1:])])


def _top_groups(answer: Answer) -> list[str]:
    return [
        f"- {item.target}, {item.size} per class: {', '.join(item.top_group)}" for item in answer
    ]


def _similarity_lines(answer: Answer, method: str | None) -> list[str]:
    """A line per target with its measured similarity (study.answer.similarity), and how."""
    from study.answer.similarity import similarity_cell

    shown: dict[str, str] = {}
    for item in answer:
        shown.setdefault(item.target, similarity_cell(item.similarity))
    if not method:
        return ["Not measured (no study-pretrained weights)."]
    return [*(f"- {target}: {cell}" for target, cell in shown.items()), "", f"Measure: {method}."]


def _wall_time(seconds: dict[str, float]) -> str:
    order = [p for p in PHASES if p in seconds] + sorted(set(seconds) - set(PHASES))
    total = sum(seconds.values())
    parts = ", ".join(f"{phase} {seconds[phase]:.0f} s" for phase in order)
    return f"{parts} (total {total / 60:.1f} min)" if parts else "not recorded"


def decision_lines(answer: Answer) -> list[str]:
    """A line per (target, size), the recommendation first: `**digits, 1 per class:** use
    cnn4 freeze-3 (test acc 0.912): equivalent within 2 points ...`, one paragraph: each
    line but the last ends in two spaces, Markdown's line break."""
    lines = [
        f"**{item.target}, {item.size} per class:** {recommendation_line(item)}" for item in answer
    ]
    return [line + "  " for line in lines[:-1]] + lines[-1:]


def answer_markdown(
    answer: Answer, study: str, budget: dict[str, str], seconds: dict[str, float]
) -> str:
    """The decision per (target, size) first, then the best-freeze table with intervals
    and verdicts, the top group per size, the tuning budget and the wall time per phase."""
    lines = [
        *decision_lines(answer),
        *([""] if answer else []),
        f"## Best freeze strategy per target and dataset size (study {study})",
        "",
        "Mean test accuracy over seeds, Student-t 95% intervals; the paired columns compare "
        "the same seeds' training subsets.",
        "",
        markdown_table(best_freeze_rows(answer)) if answer else "No confirmed results.",
        "",
        "### Top group per size (paired t-test against the best, Holm, 5%)",
        "",
        *_top_groups(answer),
        "",
        "### Similarity of each target to the source",
        "",
        *_similarity_lines(answer, budget.get(tracking.PARAM_SIMILARITY_METHOD)),
        "",
        "### Tuning budget",
        "",
        *[f"- {name}: {budget[name]}" for name in tracking.BUDGET_PARAMS if name in budget],
        *[f"- confirm race, {line}" for line in budget_lines(answer)],
        "",
        "### Wall time per phase",
        "",
        _wall_time(seconds),
        "",
        f"Pictures: {', '.join(PICTURES)} (Artifacts tab); every strategy ranked: "
        "report/ranking.txt; per seed: report/best_freeze.json.",
    ]
    return "\n".join(lines)


def study_markdown(run, answer: Answer) -> str:
    """The Markdown answer of study run `run` (an MLflow Run), from its tags, its budget
    parameters and its `seconds_<phase>` metrics."""
    phases = {name: tracking.parse_phase_seconds_metric(name) for name in run.data.metrics}
    seconds = {phase: run.data.metrics[name] for name, phase in phases.items() if phase}
    study = run.data.tags.get(tracking.TAG_STUDY, "?")
    return answer_markdown(answer, study, run.data.params, seconds)
