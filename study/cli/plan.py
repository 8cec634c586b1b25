"""`study plan`: what a study will cost before it runs (study.stages.plan estimates it).

    study plan --preset default
    study plan --config my-study.yaml --cluster cluster.yaml --budget 2h --format json

Where the plan fits no node (a trial needing more GPUs or CPUs than any node has) or its
expected wall time is over `--budget`, one line and exit 2 (study.errors.ConfigError),
and nothing else. Nothing is written but the calibration cache (plan-calibration.json
in `stores.checkpoints`).
"""

from __future__ import annotations

import json
import re

from study.errors import BadInput, ConfigError

UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(min|[smhd])")


def parse_duration(text: str) -> float:
    """Seconds of `90m`, `1h30m`, `2h`, `45s`, `1.5h` or a plain number of seconds."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = DURATION.findall(value)
        if not parts or DURATION.sub("", value).strip():
            raise BadInput(f"--budget {text!r}: a duration like 90m, 2h, 1h30m or 3600 (seconds)")
        seconds = sum(float(n) * UNITS[unit] for n, unit in parts)
    if seconds <= 0:
        raise BadInput(f"--budget {text!r}: must be more than 0")
    return seconds


def add_parser(commands, add_config_args) -> None:
    """`study plan` on the `study` command's subparsers."""
    plan = commands.add_parser(
        "plan",
        help="what a study will cost (trials, wall time, GPU-hours, bytes), before it runs",
        description="Trials, trial-seconds, wall time, GPU-hours, object-store bytes and "
        "store rows per phase, from a short calibration on this machine (cached next to the "
        "pretrained checkpoints). Runs nothing of the study; writes nothing to its stores.",
    )
    add_config_args(plan)
    where = plan.add_mutually_exclusive_group()
    where.add_argument("--cluster", help="a Ray cluster launcher file (node types, max_workers)")
    where.add_argument("--address", help="a running Ray cluster's address (its nodes are read)")
    plan.add_argument("--budget", help="the most wall time allowed, e.g. 90m, 2h (exit 2 if over)")
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.set_defaults(func=cmd_plan)


def _where(args, config):
    from study.stages.plan_where import from_cluster_file, here, running

    if args.address:
        return running(args.address)
    if args.cluster:
        from study.cli.cluster_file import _prepared, _ray_validation
        from study.config.files import read_yaml

        raw = read_yaml(args.cluster, "cluster file")
        if not isinstance(raw, dict):
            raise ConfigError(f"{args.cluster}: a cluster file must be a YAML mapping")
        failed = _ray_validation(raw)
        if failed:
            raise ConfigError(f"{args.cluster}: {failed}")
        return from_cluster_file(args.cluster, _prepared(raw))
    return here(config)


def cmd_plan(args) -> int:
    from study.cli.commands import _study_config

    config = _study_config(args)
    budget = parse_duration(args.budget) if args.budget else None
    from study.stages.context import search_labels
    from study.stages.plan import estimate
    from study.stages.plan_where import fit_problems, memory_problems

    where = _where(args, config)
    problems = fit_problems(config, where) or memory_problems(config, where)
    if problems:
        raise ConfigError(problems[0])
    plan = estimate(config, where, search_labels(config))
    low, expected, high = plan.wall()
    if budget is not None and expected > budget:
        raise ConfigError(
            f"the planned wall time, {_duration(expected)} (expected; {_duration(low)} to "
            f"{_duration(high)}), is over the budget of {_duration(budget)} ({where.how})"
        )
    if args.format == "json":
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print(plan_text(plan))
    return 0


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _triple(values, show) -> str:
    low, expected, high = values
    if low == high:
        return show(expected)
    return f"{show(low)} / {show(expected)} / {show(high)}"


def plan_text(plan) -> str:
    """The plan as a table per phase, then the bytes and the notes."""
    rows = [("phase", "trials", "trial-seconds", "wall time", "GPU-hours")]
    for p in plan.phases:
        rows.append(
            (
                p.name,
                _triple(p.trials, str) if any(p.trials) else "-",
                _triple(p.trial_seconds, lambda s: f"{s:.0f}") if any(p.trials) else "-",
                _triple(p.wall_seconds, _duration),
                _triple(p.gpu_hours, lambda h: f"{h:.2f}") if any(p.gpu_hours) else "-",
            )
        )
    rows.append(("start+end", "-", "-", _duration(plan.startup_seconds), "-"))
    total = (
        "total",
        _triple(plan.total("trials"), str),
        _triple(plan.total("trial_seconds"), lambda s: f"{s:.0f}"),
    )
    rows.append(
        (
            *total,
            _triple(plan.wall(), _duration),
            _triple(plan.total("gpu_hours"), lambda h: f"{h:.2f}")
            if any(plan.total("gpu_hours"))
            else "-",
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    table.insert(1, "  ".join("-" * w for w in widths))
    stores = plan.stores
    lines = [
        f"study plan: {plan.study} on {plan.where}; {plan.slots} trial(s) at once",
        "(racing confirm phase: minimum / expected / maximum)",
        "",
        *table,
        "",
        f"object store: {_bytes(plan.object_store_bytes)} put (targets and source weights, "
        f"once per Ray experiment)",
        f"stores: MLflow {stores['mlflow']['runs']} runs, {stores['mlflow']['rows']} rows, "
        f"~{_bytes(stores['mlflow']['bytes'])}; Optuna {stores['optuna']['studies']} studies, "
        f"{stores['optuna']['rows']} rows, ~{_bytes(stores['optuna']['bytes'])}; ray_results "
        f"~{_bytes(stores['ray_results']['bytes'])}; artifacts ~{_bytes(stores['artifacts']['bytes'])}; "
        f"checkpoints {stores['checkpoints']['files']} file(s), "
        f"{_bytes(stores['checkpoints']['bytes'])}",
    ]
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)
