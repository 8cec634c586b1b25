"""`study validate`: a study config (and a cluster file) checked without running or writing
anything; every problem found is listed, one line each, exit 2."""

from __future__ import annotations

import sys

from study.errors import EXIT_BAD_INPUT


def _config_problems(args) -> tuple[list[str], object]:
    """Every problem of the config (file or preset), and the config to check further."""
    from study.config.files import check_config, load_preset, read_config_data
    from study.errors import ConfigError

    if not args.config:
        return [], load_preset(args.preset)
    try:
        data = read_config_data(args.config)
    except ConfigError as error:
        return [str(error)], None
    return check_config(data, str(args.config))


def cmd_validate(args) -> int:
    """Check a study config (and a cluster file) without running or writing anything;
    every problem found is listed (schema, names, data and sizes, stores, cluster)."""
    from study.cli.cluster_file import cluster_problems
    from study.errors import ConfigError
    from study.stores.checks import store_problems

    problems, config = _config_problems(args)
    if config is not None:
        from study.stages.load import load_checked_targets  # torch, MLflow: only for a config

        try:
            load_checked_targets(config)
        except ConfigError as error:
            problems.append(str(error))
        problems += store_problems(config.stores)
    if args.cluster:
        problems += cluster_problems(args.cluster, config)
    if problems:
        for problem in problems:
            print(f"study validate: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    source = args.config or "preset " + args.preset
    print(f"{source}: valid study config ({config.name})")
    if args.cluster:
        print(f"{args.cluster}: valid cluster file for this study")
    return 0
