"""`study plan`: what a study will cost, before it runs (issue 28).

Per phase (load, pretrain, similarity, search, confirm, report): the trials (the confirm
race's minimum, expected and maximum), the trial-seconds, the wall time on the trial
slots it gets (study.stages.plan_where), the GPU-hours; and the bytes put in Ray's object
store and the rows and bytes the stores will hold (study.stages.plan_stores). Nothing of
the study runs and no store is written: the targets are read, the checkpoint cache
looked at, and the training speed calibrated (study.stages.plan_calibration, cached).

The time model, its measured constants and the confirm race's model: study.stages.plan_cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from search_spaces.strategies import get_strategy
from search_spaces.transfer import Label
from study.config.schema import StudyConfig
from study.stages.plan_calibration import calibrate, flop_profile
from study.stages.plan_cost import (
    GPU_MIN_STEP_S,
    GPU_SPEEDUP,
    REPORT_S,
    SIMILARITY_S,
    STARTUP_S,
    Costing,
    PhasePlan,
    pretrain_phase,
    trial_phases,
    trial_shapes,
)
from study.stages.plan_where import Where, on_gpus, trial_slots
from trainables.loops import cpu_threads


@dataclass
class Plan:
    study: str
    where: str
    slots: int
    phases: list[PhasePlan]
    startup_seconds: float = STARTUP_S
    object_store_bytes: int = 0
    stores: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def total(self, what: str) -> tuple:
        """The sum over the phases of `what` (a PhasePlan field), per (min, exp, max)."""
        values = [getattr(phase, what) for phase in self.phases]
        return tuple(sum(v[i] for v in values) for i in range(3))

    def wall(self) -> tuple[float, float, float]:
        """The study's wall time: its phases and the process's start."""
        return tuple(s + self.startup_seconds for s in self.total("wall_seconds"))

    def to_json(self) -> dict:
        def triple(values, kind=float):
            values = [kind(v) if kind is int else round(v, 3) for v in values]
            return dict(zip(("min", "expected", "max"), values, strict=True))

        return {
            "study": self.study,
            "where": self.where,
            "trial_slots": self.slots,
            "phases": [
                {
                    "phase": p.name,
                    "trials": triple(p.trials, int),
                    "trial_seconds": triple(p.trial_seconds),
                    "wall_seconds": triple(p.wall_seconds),
                    "gpu_hours": triple(p.gpu_hours),
                }
                for p in self.phases
            ],
            "startup_seconds": self.startup_seconds,
            "wall_seconds": triple(self.wall()),
            "trials": triple(self.total("trials"), int),
            "gpu_hours": triple(self.total("gpu_hours")),
            "object_store_bytes": self.object_store_bytes,
            "stores": self.stores,
            "notes": self.notes,
        }


def estimate(config: StudyConfig, where: Where, labels: list[Label]) -> Plan:
    """The plan of `config` on `where` (`labels`: study.stages.context.search_labels)."""
    from study.stages.plan_stores import object_store_bytes, store_sizes
    from study.stages.plan_targets import target_facts, to_pretrain

    facts, load_seconds, notes = target_facts(config)
    pretrain = to_pretrain(config)
    shapes, source = trial_shapes(config, facts, pretrain)
    threads = cpu_threads(config.resources.cpu_per_trial)
    all_shapes = [*shapes.values(), *source.values()]
    speeds, calibration_notes = calibrate(config.stores.checkpoints, all_shapes, threads)
    speeds = {
        **{k: speeds[s] for k, s in shapes.items()},
        **{s: speeds[s] for s in source.values()},
    }
    shares = {key: flop_profile(shape)[1] for key, shape in shapes.items()}
    slots = max(1, trial_slots(config, where))
    cost = Costing(config, facts, speeds, shares, slots, on_gpus(config, where))
    phases = [PhasePlan("load", wall_seconds=(load_seconds,) * 3)]
    phases.append(pretrain_phase(cost, pretrain, source))
    sourced = config.source.weights == "study" and any(
        get_strategy(s).needs_weights for s in config.search.strategies
    )
    pairs = len(facts) * len(config.search.architectures) if sourced else 0
    similarity = SIMILARITY_S[0] + SIMILARITY_S[1] * pairs if pairs else 0.0
    phases.append(PhasePlan("similarity", wall_seconds=(similarity,) * 3))
    phases += trial_phases(cost, labels)
    trials = [sum(p.trials[i] for p in phases[-2:]) for i in range(3)]
    phases.append(
        PhasePlan("report", wall_seconds=tuple(REPORT_S[0] + REPORT_S[1] * n for n in trials))
    )
    plan = Plan(config.name, where.how, cost.slots, phases)
    plan.object_store_bytes = object_store_bytes(config, facts, pretrain)
    plan.stores = store_sizes(config, plan, len(labels), pretrain)
    plan.notes = [*where.notes, *notes, *calibration_notes]
    if cost.gpu:
        plan.notes.append(
            f"trials train on GPUs: at {GPU_SPEEDUP:g} x gpu_per_trial the speed calibrated "
            f"here on {threads} CPU thread(s), a step at least {GPU_MIN_STEP_S * 1000:g} ms "
            f"(assumed, not measured: study.stages.plan_where)"
        )
    if config.search.early_stopping:
        plan.notes.append(
            "search.early_stopping: ASHA stops trials early; the search's trial-seconds are its most"
        )
    return plan


def plan_params(plan: Plan) -> dict:
    """The plan as the study run's params (planned_*; the same numbers `study plan` says):
    expected values, with the confirm race's and the wall time's min and max."""
    from study.tracking import client as tracking

    name = tracking.planned_param
    by_phase = {p.name: p for p in plan.phases}
    low, expected, high = plan.wall()
    confirm = by_phase["confirm"].trials
    params = {
        name(tracking.phase_seconds_metric(p.name)): round(p.wall_seconds[1], 1)
        for p in plan.phases
    }
    return params | {
        name("wall_seconds"): round(expected, 1),
        name("wall_seconds_min"): round(low, 1),
        name("wall_seconds_max"): round(high, 1),
        name("pretrain_runs"): by_phase["pretrain"].trials[1],
        name(tracking.PARAM_SEARCH_TRIALS): by_phase["search"].trials[1],
        name("confirm_trials_min"): confirm[0],
        name("confirm_trials_expected"): confirm[1],
        name("confirm_trials_max"): confirm[2],
        name("trial_seconds"): round(plan.total("trial_seconds")[1], 1),
        name("gpu_hours"): round(plan.total("gpu_hours")[1], 3),
        name("trial_slots"): plan.slots,
        name("object_store_bytes"): plan.object_store_bytes,
    }


def planned_params(config: StudyConfig, log=print) -> dict:
    """The study run's planned_* params, planned on the Ray cluster it runs on (the
    calibration `study plan` cached, else measured now); {} when no plan could be made
    (a plan never stops a study)."""
    import ray

    from study.stages.context import search_labels
    from study.stages.plan_where import from_nodes, here
    from study.tuning.runtime import alive_nodes

    try:
        where = here(config)
        if ray.is_initialized():
            where = from_nodes("the study's Ray cluster", alive_nodes())
        plan = estimate(config, where, search_labels(config))
    except Exception as error:  # noqa: BLE001  (a plan that fails is told, not raised)
        log(f"plan: none ({type(error).__name__}: {str(error)[:200]})")
        return {}
    low, expected, high = plan.wall()
    log(
        f"plan: about {expected / 60:.1f} min ({low / 60:.1f}-{high / 60:.1f}), `study plan` says why"
    )
    return plan_params(plan)
