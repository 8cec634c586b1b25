"""`study run | best-freeze | archs | pretrain | validate | ui`.

Bad input (arguments, config, data) ends with one line on stderr and exit code 2,
before any trial starts and before anything is written to the stores.
"""

from __future__ import annotations

import argparse
import errno
import sys

from study.errors import EXIT_BAD_INPUT, EXIT_NO_SPACE, BadInput, ConfigError, NoStudyFound


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + error)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def default_tracking_uri() -> str:
    from study.stores.urls import mlflow_from_env

    return mlflow_from_env() or "sqlite:///mlflow.db"


def _study_config(args):
    from study.config.files import load_config, load_preset

    if args.config:
        return load_config(args.config)
    return load_preset(args.preset)


def _again(args) -> str:
    """The command that continues this study."""
    return " ".join(["study", *sys.argv[1:]] + ([] if args.resume else ["--resume"]))


def cmd_run(args) -> int:
    config = _study_config(args)  # a bad config is told before the heavy imports below
    _check_where_it_writes(config)  # and so are the places it writes and Ray's address
    from study.answer.recommendation import recommendation_lines
    from study.answer.report import best_freeze_table
    from study.cli.ui import browse_lines
    from study.stages.context import RunOptions
    from study.stages.lease import no_space
    from study.stages.protocol import run_study
    from study.stores.signals import Interrupted, interruptible

    command = (
        f"study run --config {args.config}" if args.config else f"study run --preset {args.preset}"
    )
    try:
        with interruptible():
            options = RunOptions(
                log=lambda line: print(line, flush=True),
                resume=args.resume,
                verbose=args.verbose,
                command=command,
            )
            answer = run_study(config, options)
    except Exception as error:  # a full disk: the study is closed as failed, resumable
        full = no_space(error)
        if full is None:
            raise
        print(
            f"study run: error: no space left on device ({full}); free some space and "
            f"continue with: {_again(args)}",
            file=sys.stderr,
        )
        return EXIT_NO_SPACE
    except Interrupted as stop:  # the study is closed as interrupted (study.stages.protocol)
        print(f"study run: stopped by {stop}; continue it with: {_again(args)}", file=sys.stderr)
        return stop.exit_code
    print()
    print("What to use, per dataset size (decided on validation accuracy, README: the answer):")
    print("\n".join(recommendation_lines(answer, config.several_targets())))
    print()
    print(
        f"Best freeze strategy per target dataset size (study {config.name}, mean test "
        f"accuracy over {_seeds(config)} seeds):"
    )
    print(best_freeze_table(answer))
    print()
    print("\n".join(browse_lines(config.stores.mlflow, *_study_ids(config))))
    return 0


def _study_ids(config) -> tuple[str, str | None]:
    """The experiment id and the latest study run's id of study `config` (just run)."""
    from study.tracking import client as tracking

    client = tracking.client_for(config.stores.mlflow)
    ids = tracking.experiment_ids(client, config.name)
    run = tracking.latest_study_run(client, ids)
    return ids[0], run.info.run_id if run is not None else None


def _check_where_it_writes(config) -> None:
    """Each place the study writes and where Ray is pointed, checked before torch, MLflow
    and Ray are imported (seconds per command), so such a refusal comes at once; the
    study's own checks (study.stages.protocol, study.tuning.runtime) stay for the API."""
    from study.stores.checks import check_places
    from study.tuning.ray_env import check_ray_environment

    check_places(config.stores)
    check_ray_environment()


def _seeds(config) -> str:
    """`5`, or `5/3` when the targets have different numbers of seeds."""
    return "/".join(str(n) for n in sorted({t.seeds for t in config.target_list()}))


def cmd_pretrain(args) -> int:
    from study.stages.pretrain import pretrain_sources
    from study.stores.checks import check_stores
    from study.tracking import client as tracking
    from study.tuning.runtime import ray_runtime

    config = _study_config(args)
    if args.arch:
        from study.config.files import check_names

        config = config.model_copy(
            update={"search": config.search.model_copy(update={"architectures": args.arch})}
        )
        check_names(config, "--arch")
    check_stores(config.stores)
    _check_where_it_writes(config)
    client = tracking.client_for(config.stores.mlflow)
    with ray_runtime(config):  # each architecture trains in a Ray task
        pretrain_sources(config, client, log=lambda line: print(line, flush=True))
    return 0


def cmd_archs(args) -> int:
    from study.cli.archs import run  # torch: imported only by the command that needs it

    return run(args)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--preset", default="default", help="an embedded preset (default, smoke, ...)"
    )
    group.add_argument("--config", help="a study config YAML file")


def _add_archs_parser(commands) -> None:
    archs = commands.add_parser(
        "archs",
        help="list the registered architectures with computed sizes and FLOPs",
        description="The registry as a comparison table, every number computed from a "
        "model built on the meta device (study/cli/archs.py says how each is counted).",
    )
    archs.add_argument("--format", choices=("table", "json"), default="table")
    archs.add_argument(
        "--num-classes", type=int, default=1000, help="classes of the built head (default 1000)"
    )
    archs.add_argument(
        "--in-channels", type=int, choices=(1, 3), default=3, help="input channels (default 3)"
    )
    archs.set_defaults(func=cmd_archs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="study",
        description="Transfer-learning studies: which layers to freeze, per dataset size.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = commands.add_parser("run", help="run a study: pretrain, search, confirm, report")
    _add_config_args(run)
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the latest unfinished study of this config (after the driver was killed)",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="also a line per finished trial and Ray Tune's trial table",
    )
    run.set_defaults(func=cmd_run)

    best = commands.add_parser("best-freeze", help="best freeze strategy per dataset size")
    best.add_argument("--experiment", help="study name (default: the most recent study)")
    best.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        default="table",
        help="markdown: the study run's description in the MLflow UI",
    )
    best.add_argument(
        "--all", action="store_true", help="also rank every strategy (json always has them)"
    )
    best.add_argument(
        "--plot", metavar="FILE", help="also write the pictures of the answer (PNG) to FILE"
    )
    best.add_argument("--tracking-uri", default=default_tracking_uri())
    from study.cli.best_freeze import cmd_best_freeze

    best.set_defaults(func=cmd_best_freeze)

    pre = commands.add_parser("pretrain", help="pretrain source checkpoints (cached)")
    _add_config_args(pre)
    pre.add_argument("--arch", nargs="+", help="architectures (default: the config's)")
    pre.set_defaults(func=cmd_pretrain)

    validate = commands.add_parser(
        "validate", help="check a study config (and a cluster file) without running anything"
    )
    _add_config_args(validate)
    validate.add_argument("--cluster", help="a Ray cluster launcher file, e.g. cluster.yaml")
    from study.cli.validate import cmd_validate

    validate.set_defaults(func=cmd_validate)

    _add_archs_parser(commands)
    from study.cli import plan, ui

    ui.add_parser(commands, default_tracking_uri())
    plan.add_parser(commands, _add_config_args)
    return parser


def _user_error_types() -> tuple[type[Exception], ...]:
    # WeightsNotCached is looked up only when its module was imported, so a command that
    # fails on its config never pays for importing torch (seconds) just to name it.
    weights = sys.modules.get("trainables.weights")
    return (BadInput, ConfigError, NoStudyFound) + ((weights.WeightsNotCached,) if weights else ())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as error:
        if not isinstance(error, _user_error_types()):
            raise
        print(f"study {args.command}: error: {error}", file=sys.stderr)
        # a place on a full disk, found before the first write (study.stores.places.NoSpace)
        full = isinstance(error, OSError) and error.errno == errno.ENOSPC
        return EXIT_NO_SPACE if full else EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
