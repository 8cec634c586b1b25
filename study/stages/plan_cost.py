"""The time model of `study plan` (study.stages.plan): trial, phase and pretraining seconds.

A trial costs TRIAL_OVERHEAD_S plus its training: `steps` optimizer steps at its batch
(`min(training.batch_size, its subset)`), a forward pass of the validation images per
report and of the test images once (classical heads: of their subset, validation and
test images, no steps; lp-ft: its probe's forward pass of the subset too), at the
calibrated speeds. Every gradient label is costed as a whole network's step: a frozen
prefix on cached features is cheaper, so this leans long where those dominate. A phase
costs PHASE_START_S (the Tuner's start) and ACTOR_START_S (each slot's first trial starts
a Ray worker), then its trial-seconds spread over the slots.

The constants were measured on the README's 2-core machine with nothing else running
(README: `study plan`), from the smoke, default and similarity presets' runs: a round's
start (the Tuner and each slot's first trial) about 4 s (smoke: 6 trials in 6 s and 5 s);
a trial 0.25 s beyond its training (default: 1,143 trials, 2 slots x 583 s of search and
confirm, 884 s training; similarity: 915 trials, 2 x 479 s, 732 s); the trials trained
0.84 and 0.86 times what the calibration said (TRIAL_SPEED: its few timed steps carry
set-up a trial's hundreds of steps spread out); the process 15-23 s beyond its phases
(STARTUP_S). Another load on the same cores slows all of it: at a load average of 3 the
default study took 1.6 times as long, at 10-15 the studies took 2-3 times as long; the
plan notes such a load (study.stages.plan_where.here).

The confirm race (study.config.answer): per (target, size) the contenders are the labels
times `search.confirm_candidates`; every contender runs the first look's seeds (the
minimum: all decided there), at most every seed (the maximum). Expected: a model, not a
measurement: DROP_PER_LOOK of the contenders still in are dropped or decided at each
look, the rest run on to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.strategies import get_strategy
from search_spaces.transfer import Label
from study.config.schema import StudyConfig
from study.stages.plan_calibration import Shape, render_seconds
from study.stages.plan_targets import TargetFacts
from study.stages.plan_where import GPU_MIN_STEP_S, GPU_SPEEDUP  # noqa: F401  (re-exported)

STARTUP_S = 18.0  # `study run` outside its phases: imports, Ray up and down, the table
PHASE_START_S = 3.0  # a Tuner's start: the object store puts, the searcher, Ray's setup
ACTOR_START_S = 1.0  # a slot's first trial: a Ray worker process starts and imports torch
TRIAL_OVERHEAD_S = 0.25  # each trial: Ray's start and results, the MLflow run, Optuna's tell
TRIAL_SPEED = 0.85  # a trial's training seconds per calibrated second (measured: 0.84-0.86)
PRETRAIN_TASK_S = 4.0  # a pretraining task's start, its checkpoint file and MLflow run
SIMILARITY_S = (0.5, 0.35)  # the stage's start, and each (target, architecture)
REPORT_S = (1.0, 0.0015)  # the answer read back and drawn: a start, and per trial
DROP_PER_LOOK = 0.5  # the confirm race's model: contenders dropped or decided per look
SOURCE_SHAPE = (32, 1, 52)  # the glyph source: image size, channels, classes


@dataclass
class PhasePlan:
    """One phase: (minimum, expected, maximum) of its trials, trial-seconds, wall seconds
    and GPU-hours (the three equal where nothing races)."""

    name: str
    trials: tuple[int, int, int] = (0, 0, 0)
    trial_seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wall_seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gpu_hours: tuple[float, float, float] = (0.0, 0.0, 0.0)


def race_rounds(contenders: int, looks: tuple[int, ...]) -> list[tuple[float, float, float]]:
    """Per look (a round of the confirm phase), the (minimum, expected, maximum) trials of
    one (target, size)'s race of `contenders` with cumulative seeds `looks`."""
    rounds, still, before = [], float(contenders), 0
    for index, look in enumerate(looks):
        new = look - before
        rounds.append((contenders * new if index == 0 else 0, still * new, contenders * new))
        still, before = still * (1 - DROP_PER_LOOK), look
    return rounds


def race_trials(contenders: int, looks: tuple[int, ...]) -> tuple[int, int, int]:
    """(minimum, expected, maximum) confirm trials of one (target, size)'s race."""
    rounds = race_rounds(contenders, looks)
    return tuple(round(sum(r[i] for r in rounds)) for i in range(3))


def trial_shapes(config: StudyConfig, facts: list[TargetFacts], pretrain: list[str]):
    """The shapes to calibrate: every architecture at every target's input, and the
    source's for the architectures to pretrain."""
    batch, optimizer = config.training.batch_size, config.training.optimizer
    shapes = {
        (f.key, arch): Shape(arch, f.image_size, f.channels, f.classes, batch, optimizer)
        for f in facts
        for arch in config.search.architectures
    }
    side, channels, classes = SOURCE_SHAPE
    source = {
        arch: Shape(arch, side, channels, classes, config.source.batch_size, "sgd")
        for arch in pretrain
    }
    return shapes, source


@dataclass
class Costing:
    """What the phase estimates share: the config, the targets, the speeds, the slots."""

    config: StudyConfig
    facts: list[TargetFacts]
    speeds: dict  # (target, arch) -> Speed; a source Shape -> Speed
    shares: dict  # (target, arch) -> frozen share of the FLOPs per boundary
    slots: int
    gpu: bool  # trials on GPUs (GPU_SPEEDUP x gpu_per_trial the calibrated speed)

    def scale(self, seconds: float, steps: int = 0) -> float:
        """CPU seconds calibrated here as the trial's: on a GPU, GPU_SPEEDUP x its share of
        one faster, `steps` optimizer steps no shorter than GPU_MIN_STEP_S each."""
        if not self.gpu:
            return seconds
        share = min(1.0, self.config.resources.gpu_per_trial)
        return max(seconds / (GPU_SPEEDUP * share), steps * GPU_MIN_STEP_S)

    def train_seconds(self, facts: TargetFacts, size: int | None, label: Label) -> float:
        """Seconds one trial of `label` trains on a `size` subset of `facts`' target (in
        the trial, at the calibrated speed; on a GPU, scaled). The first `label.freeze`
        stages' share f of the forward FLOPs is frozen: with cached features (no
        augmentation) they run once on the subset and never in a step; without, a step
        still runs them forward (a third of a step's cost), never backward."""
        config, key = self.config, (facts.key, label.arch)
        speed, frozen = self.speeds[key], self.shares[key][label.freeze]
        images, evals = facts.train_images(size), facts.val + facts.test
        strategy = get_strategy(label.strategy)
        if strategy.classical:
            return self.scale(TRIAL_SPEED * (images + evals) * speed.forward_s)
        training = config.training
        cached = label.freeze > 0 and training.feature_cache and not facts.augment
        rest = 1 - frozen
        per_image = speed.image_s * (rest if cached else 1 / 3 + 2 / 3 * rest)
        step = speed.step_s + min(training.batch_size, images) * per_image
        forward = speed.forward_s * (rest if cached else 1.0)
        steps = training.steps_for(size)
        seconds = (training.reports * facts.val + facts.test) * forward
        seconds += images * speed.forward_s * (frozen if cached else 0.0)  # the cache
        seconds += images * speed.forward_s if strategy.probed_head else 0.0
        return self.scale(TRIAL_SPEED * steps * step, steps) + self.scale(TRIAL_SPEED * seconds)

    def phase(self, name: str, rounds: list, longest: float) -> PhasePlan:
        """A trial phase of `rounds` (each a Ray experiment: its start, each slot's first
        trial, its trial-seconds spread over the slots, its longest trial at least), each
        round ((min, expected, max) trials, (min, expected, max) trial-seconds)."""
        trials = tuple(round(sum(r[0][i] for r in rounds)) for i in range(3))
        seconds = tuple(sum(r[1][i] for r in rounds) for i in range(3))
        start = PHASE_START_S + ACTOR_START_S
        walls = tuple(
            sum(start + max(r[1][i] / self.slots, longest) for r in rounds if r[0][i] > 0)
            for i in range(3)
        )
        gpu = self.config.resources.gpu_per_trial if self.gpu else 0.0
        return PhasePlan(name, trials, seconds, walls, tuple(s * gpu / 3600 for s in seconds))


def trial_phases(cost: Costing, labels: list[Label]) -> list[PhasePlan]:
    """The search phase (one round) and the confirm phase (a round per look)."""
    config = cost.config
    by_key = {f.key: f for f in cost.facts}
    search = [0, 0.0]
    confirm: dict[int, list] = {}  # round -> [trials (min, exp, max), seconds (same)]
    longest = 0.0
    for target, size in config.target_sizes():
        facts = by_key[target.key]
        seconds = [TRIAL_OVERHEAD_S + cost.train_seconds(facts, size, label) for label in labels]
        longest = max(longest, *seconds)
        mean = sum(seconds) / len(seconds)
        search[0] += config.search.trials_per_label * len(labels)
        search[1] += config.search.trials_per_label * sum(seconds)
        contenders = len(labels) * config.search.candidates_for(size)
        looks = config.answer.looks_for(target.seeds)
        # Round 1's seed 0 is the search's own trial, copied (study.stages.reuse)
        reused = 1 / looks[0] if config.answer.reuse_search_runs else 0.0
        for index, counts in enumerate(race_rounds(contenders, looks)):
            totals = confirm.setdefault(index, [[0.0] * 3, [0.0] * 3])
            trained = 1 - reused if index == 0 else 1.0
            for i, count in enumerate(counts):
                totals[0][i] += count
                totals[1][i] += count * mean * trained
    search_round = ((search[0],) * 3, (search[1],) * 3)
    return [
        cost.phase("search", [search_round], longest),
        cost.phase("confirm", [confirm[i] for i in sorted(confirm)], longest),
    ]


def pretrain_phase(cost: Costing, pretrain: list[str], source: dict) -> PhasePlan:
    """One Ray task per architecture to pretrain, at once (up to the slots)."""
    config = cost.config
    if not pretrain:
        return PhasePlan("pretrain")
    src = config.source
    n_val = max(SOURCE_SHAPE[2], src.images // 10)
    steps = -(-(src.images - n_val) // src.batch_size) * src.epochs
    render = render_seconds(config.stores.checkpoints) * src.images
    seconds = []
    for arch in pretrain:
        speed = cost.speeds[source[arch]]
        train = steps * speed.step(src.batch_size) + src.epochs * n_val * speed.forward_s
        seconds.append(PRETRAIN_TASK_S + render + cost.scale(train, steps))
    wall = max(max(seconds), sum(seconds) / max(1, min(cost.slots, len(seconds))))
    n = len(pretrain)
    gpu = config.resources.gpu_per_trial if cost.gpu else 0.0
    total = sum(seconds)
    return PhasePlan("pretrain", (n,) * 3, (total,) * 3, (wall,) * 3, (total * gpu / 3600,) * 3)
