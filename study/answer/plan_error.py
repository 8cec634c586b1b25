"""The plan's error at the end of a study: what `study plan` said (the study run's
planned_* params, study.stages.plan) against what the study took (its phases' wall time,
its trials), as lines for the terminal and the report's plan_error.txt."""

from __future__ import annotations

from study.tracking.names import PARAM_SEARCH_TRIALS, phase_seconds_metric, planned_param


def _number(params: dict, what: str) -> float | None:
    try:
        return float(params[planned_param(what)])
    except (KeyError, ValueError):
        return None


def _error(actual: float, planned: float) -> str:
    return f"{actual / planned - 1:+.0%}" if planned > 0 else "-"


def plan_error_lines(params: dict, seconds: dict[str, float], trials: dict[str, int]) -> list[str]:
    """Planned against actual (`params`: the study run's; `seconds`: wall seconds per
    phase; `trials`: trial runs per phase); [] for a study run without a plan."""
    planned = {phase: _number(params, phase_seconds_metric(phase)) for phase in seconds}
    if not any(value is not None for value in planned.values()):
        return []
    taken = sum(seconds.values())
    expected = sum(value or 0.0 for value in planned.values())
    lines = [
        f"plan error: the phases took {taken:.0f} s, planned {expected:.0f} s "
        f"({_error(taken, expected)}; process start not counted)"
    ]
    for phase, value in seconds.items():
        if planned.get(phase) is not None:
            lines.append(
                f"  {phase}: {value:.0f} s, planned {planned[phase]:.0f} s "
                f"({_error(value, planned[phase])})"
            )
    search = _number(params, PARAM_SEARCH_TRIALS)
    if search is not None and "search" in trials:
        lines.append(f"  search trials: {trials['search']}, planned {search:.0f}")
    race = [_number(params, f"confirm_trials_{k}") for k in ("min", "expected", "max")]
    if None not in race and "confirm" in trials:
        low, mid, high = race
        inside = "inside" if low <= trials["confirm"] <= high else "OUTSIDE"
        lines.append(
            f"  confirm trials: {trials['confirm']}, planned {low:.0f} / {mid:.0f} / {high:.0f} "
            f"(min / expected / max: {inside})"
        )
    return lines
