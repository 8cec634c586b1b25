"""`study validate`: a study config (and a cluster file) checked without running or writing
anything; every problem found is listed, one line each, exit 2 (3 when every problem is a
full disk)."""

from __future__ import annotations

import os
import sys

from study.errors import EXIT_BAD_INPUT, EXIT_NO_SPACE


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
    every problem found is listed (schema, names, data and sizes, stores and the places
    they write, where Ray is pointed, cluster)."""
    from study.cli.cluster_file import cluster_problems
    from study.errors import ConfigError
    from study.stores.checks import place_problems, store_problems
    from study.stores.places import NoSpaceLine

    problems, config = _config_problems(args)
    if config is not None:
        from study.stages.load import load_checked_targets  # torch, MLflow: only for a config

        try:
            load_checked_targets(config)
        except ConfigError as error:
            problems.append(str(error))
        problems += store_problems(config.stores) + place_problems(config.stores)
        from study.tuning.ray_env import ray_problems  # Ray imported only where it must be

        problems += ray_problems()
    notes = []
    if config is not None and not args.cluster:  # with --cluster: its node types, below
        problems += resource_problems(config, notes)
    if args.cluster:
        problems += cluster_problems(args.cluster, config)
    if problems:
        for problem in problems:
            print(f"study validate: error: {problem}", file=sys.stderr)
        full = all(isinstance(problem, NoSpaceLine) for problem in problems)
        return EXIT_NO_SPACE if full else EXIT_BAD_INPUT
    source = args.config or "preset " + args.preset
    print(f"{source}: valid study config ({config.name})")
    if args.cluster:
        print(f"{args.cluster}: valid cluster file for this study")
    for note in notes:
        print(note)
    return 0


def resource_problems(config, notes: list[str]) -> list[str]:
    """`study run`'s check that one trial fits a node (study.tuning.runtime), here against
    this machine as a local Ray runtime would have it (`resources.num_cpus`, else every
    CPU; its GPUs), without starting Ray; where `study run` would join a cluster instead
    (RAY_ADDRESS, a `ray start` cluster here), a line in `notes` says it is checked then."""
    cpu, gpu = config.resources.cpu_per_trial, config.resources.gpu_per_trial
    wanted = f"resources.cpu_per_trial {cpu:g}, resources.gpu_per_trial {gpu:g}"
    address = os.environ.get("RAY_ADDRESS", "")
    if address and address != "local":  # `local`: a runtime of the study's own, as below
        notes.append(
            f"{wanted}: checked against the Ray cluster at {address} (RAY_ADDRESS) when "
            f"the study runs"
        )
        return []
    node = {"CPU": config.resources.num_cpus or os.cpu_count() or 1, "GPU": _gpus(gpu)}
    if node["CPU"] >= cpu and node["GPU"] >= gpu:
        return []  # it fits (runtime.trial_fits would say so): no need to import Ray
    from study.tuning.ray_env import started_cluster_address
    from study.tuning.runtime import ClusterTooSmall, check_trial_fits

    found = None if address else started_cluster_address()
    if found is not None:  # `study run` joins it, and its nodes may hold a trial
        notes.append(
            f"{wanted}: checked against the Ray cluster `ray start` made here, at {found}, "
            f"when the study runs"
        )
        return []
    try:
        check_trial_fits(config, [node], [])  # the line `study run` ends with
    except ClusterTooSmall as error:
        return [str(error)]
    return []


def _gpus(wanted: float) -> int:
    """The GPUs a local Ray runtime would have here (CUDA_VISIBLE_DEVICES included); not
    looked for when no trial wants one."""
    if not wanted:
        return 0
    import torch

    return torch.cuda.device_count()
