"""`study run | best-freeze | archs | pretrain | validate | ui`.

Bad input (arguments, config, data) ends with one line on stderr and exit code 2,
before any trial starts and before anything is written to the stores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Raised for user errors; the message is the one line the user sees."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + error)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")


def ui_command(tracking_uri: str) -> str:
    return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1"


def _study_config(args):
    from study.config import load_config, load_preset

    if args.config:
        return load_config(args.config)
    return load_preset(args.preset)


def _existing_store(uri: str) -> str:
    """Refuse to query a SQLite store that does not exist (MLflow would create it)."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise BadInput(
                f"no MLflow store at {path} (tracking URI {uri}); run `study run` first "
                f"or pass --tracking-uri"
            )
    return uri


def cmd_run(args) -> int:
    from study.protocol import run_study
    from study.report import best_freeze_table

    config = _study_config(args)
    answer = run_study(config, log=lambda line: print(line, flush=True))
    print()
    print(
        f"Best freeze strategy per target dataset size (study {config.name}, mean test "
        f"accuracy over {config.target.seeds} seeds):"
    )
    print(best_freeze_table(answer))
    print()
    print(f"Browse every trial in the MLflow UI: {ui_command(config.stores.mlflow)}")
    return 0


def cmd_best_freeze(args) -> int:
    from study import tracking
    from study.query import best_per_size, latest_study_run, study_confirm_rows
    from study.report import best_freeze_table

    client = tracking.client_for(_existing_store(args.tracking_uri))
    parent = latest_study_run(client, args.experiment)
    answer = best_per_size(study_confirm_rows(client, parent.info.run_id))
    if args.format == "json":
        print(json.dumps(answer, indent=2))
    else:
        study = parent.data.tags.get(tracking.TAG_STUDY, "?")
        print(f"study {study} (MLflow run {parent.info.run_id})")
        print(best_freeze_table(answer))
    return 0


def cmd_pretrain(args) -> int:
    from study import tracking
    from study.protocol import pretrain_sources

    config = _study_config(args)
    if args.arch:
        from study.config import check_names

        config = config.model_copy(
            update={"search": config.search.model_copy(update={"architectures": args.arch})}
        )
        check_names(config, "--arch")
    client = tracking.client_for(config.stores.mlflow)
    pretrain_sources(config, client, log=lambda line: print(line, flush=True))
    return 0


def cmd_validate(args) -> int:
    from study.protocol import load_checked_target

    config = _study_config(args)
    load_checked_target(config)
    print(f"{args.config or 'preset ' + args.preset}: valid study config ({config.name})")
    return 0


def cmd_ui(args) -> int:
    command = ui_command(args.tracking_uri).split() + ["--port", str(args.port)]
    print(" ".join(command), flush=True)
    return subprocess.call(command)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--preset", default="default", help="an embedded preset (default, smoke, ...)"
    )
    group.add_argument("--config", help="a study config YAML file")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="study",
        description="Transfer-learning studies: which layers to freeze, per dataset size.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = commands.add_parser("run", help="run a study: pretrain, search, confirm, report")
    _add_config_args(run)
    run.set_defaults(func=cmd_run)

    best = commands.add_parser("best-freeze", help="best freeze strategy per dataset size")
    best.add_argument("--experiment", help="study name (default: the most recent study)")
    best.add_argument("--format", choices=("table", "json"), default="table")
    best.add_argument("--tracking-uri", default=default_tracking_uri())
    best.set_defaults(func=cmd_best_freeze)

    pre = commands.add_parser("pretrain", help="pretrain source checkpoints (cached)")
    _add_config_args(pre)
    pre.add_argument("--arch", nargs="+", help="architectures (default: the config's)")
    pre.set_defaults(func=cmd_pretrain)

    validate = commands.add_parser("validate", help="check a study config without running it")
    _add_config_args(validate)
    validate.set_defaults(func=cmd_validate)

    ui = commands.add_parser("ui", help="open the MLflow UI on the study store (127.0.0.1)")
    ui.add_argument("--tracking-uri", default=default_tracking_uri())
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)

    try:
        from study import archs_table
    except ImportError:  # pragma: no cover - the table module ships with the package
        archs_table = None
    if archs_table is not None:
        archs_table.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from study.config import ConfigError
    from study.query import NoStudyFound
    from trainables.weights import WeightsNotCached

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (BadInput, ConfigError, NoStudyFound, WeightsNotCached) as error:
        print(f"study {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
