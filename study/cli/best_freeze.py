"""`study best-freeze`: the answer of a study read back from its store, as a table, JSON
or Markdown, and its pictures (`--plot FILE`, checked before the store is read)."""

from __future__ import annotations

import sys
from pathlib import Path

from study.errors import EXIT_BAD_INPUT, EXIT_NO_SPACE, BadInput

PLOT_FORMATS = (".png", ".pdf", ".svg")


def _plot_problem(path: Path) -> str | None:
    """Why --plot FILE cannot be written (study.stores.places; a full disk: NoSpaceLine)."""
    from study.stores.places import file_problem

    if path.suffix.lower() not in PLOT_FORMATS:
        return f"--plot {path}: the file must end in one of {', '.join(PLOT_FORMATS)}"
    return file_problem(f"--plot {path}", path)  # its folder there, writable, not full


def _refused(problem: str) -> int:
    from study.stores.places import NoSpaceLine

    print(f"study best-freeze: error: {problem}", file=sys.stderr)
    return EXIT_NO_SPACE if isinstance(problem, NoSpaceLine) else EXIT_BAD_INPUT


def cmd_best_freeze(args) -> int:
    from study.stores.checks import check_tracking_uri, existing_store

    plot = Path(args.plot) if args.plot else None
    if plot and (problem := _plot_problem(plot)):
        return _refused(problem)  # before the store is read
    check_tracking_uri(existing_store(args.tracking_uri))
    from study.answer.query import latest_study_run, study_answer
    from study.answer.recommendation import recommendation_lines
    from study.answer.report import best_freeze_table, ranking_table
    from study.tracking import (
        client as tracking,  # MLflow: after the checks, which answer in a fraction of a second
    )

    client = tracking.client_for(args.tracking_uri)
    parent = latest_study_run(client, args.experiment)
    answer = study_answer(client, parent)
    if plot:
        from study.answer.plots import answer_figure

        if not answer:
            raise BadInput(f"study run {parent.info.run_id} has no confirmed results to plot")
        from study.stores.places import file_state, write_failed

        before = file_state(plot)
        try:
            answer_figure(answer, plot)
        except OSError as error:  # the disk filled since the check, ...
            return _refused(write_failed(f"--plot {plot}", plot, error, before))
    if args.format == "json":
        print(answer.to_json())
    elif args.format == "markdown":  # the study run's description in the MLflow UI
        from study.answer.descriptions import study_markdown

        print(study_markdown(parent, answer))
    else:
        study = parent.data.tags.get(tracking.TAG_STUDY, "?")
        print(f"study {study} (MLflow run {parent.info.run_id})")
        print("\n".join(recommendation_lines(answer)))
        print(best_freeze_table(answer))
        if args.all:
            print()
            print("Every strategy confirmed, per dataset size:")
            print(ranking_table(answer))
    if args.plot:
        print(
            f"pictures of the answer: {args.plot}",
            file=sys.stderr if args.format != "table" else sys.stdout,
        )
    return 0
