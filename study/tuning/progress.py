"""What the terminal shows while a phase runs: progress, the estimated time left, failures.

A Ray Tune callback on the driver, one per phase (search, confirm). It prints
- a progress line after the first trial finishes (the first estimate of the time left)
  and about every PROGRESS_EVERY_S seconds: done / total, best validation accuracy
  so far, elapsed, estimated time left; so the output grows with the phase's duration,
  not with its number of trials. The estimate is the time per finished trial since the
  first result of any trial, so the phase's start-up (worker processes, imports, the
  datasets into the object store) does not count as trial time: counted from the
  phase's start, the default study's first estimate was 2h59m for a 5-minute phase;
- each failed trial with its reason as it happens (restarts from a checkpoint included);
- with `verbose`, a line per finished trial (Ray's own trial table is study.tuning.tuner's, also
  only with `verbose`);
- a closing line per phase: trials done, failed, wall time.
"""

from __future__ import annotations

import time

from ray.tune import Callback

from search_spaces.strategies import strategy_label
from study.tracking.trial_logger import error_line
from trainables.contract import Key, Report

PROGRESS_EVERY_S = 30.0


def clock(seconds: float) -> str:
    """`45 s`, `3m05s`, `1h02m`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def trial_name(config: dict) -> str:
    """`size 5 cnn4 freeze-2 seed 0`: what a user tells trials apart by."""
    label = strategy_label(config[Key.STRATEGY], config[Key.FREEZE])
    return f"size {config[Key.SIZE]} {config[Key.ARCH]} {label} seed {config[Key.SEED]}"


def _finished(trials) -> list:
    return [trial for trial in trials if trial.status in ("TERMINATED", "ERROR")]


class PhaseProgress(Callback):
    """Progress lines of one phase of `total` trials (see the module's docstring)."""

    def __init__(self, phase: str, total: int, verbose: bool = False) -> None:
        self.phase, self.total, self.verbose = phase, total, verbose
        self._start()

    def _start(self) -> None:
        self.started = time.monotonic()
        self.first_result = None  # when the first report of any trial arrived
        self.last_line = None  # when the last progress line was printed
        self.done_before = None  # trials a restored phase had already finished
        self.failed = 0

    # Ray pickles its callbacks with the experiment; a resumed phase starts a fresh clock.
    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._start()

    def say(self, line: str) -> None:
        print(f"[{self.phase}] {line}", flush=True)

    def progress_line(self, finished: list, now: float) -> str:
        done, elapsed = len(finished), now - self.started
        ran = done - (self.done_before or 0)
        scores = [
            (t.last_result[Report.VAL_ACC], t)
            for t in finished
            if Report.VAL_ACC in (t.last_result or {})
        ]
        best = "-"
        if scores:
            score, trial = max(scores, key=lambda pair: pair[0])
            best = f"{score:.3f} ({trial_name(trial.config)})"
        left = "unknown"
        if ran > 0:
            trial_time = now - (self.first_result or self.started)
            left = f"about {clock(trial_time / ran * max(self.total - done, 0))}"
        return (
            f"{done}/{self.total} trials done, best val_acc {best}, "
            f"{clock(elapsed)} elapsed, {left} left"
        )

    def on_step_end(self, iteration, trials, **info):
        now = time.monotonic()
        due = now - (self.last_line or self.started) >= PROGRESS_EVERY_S
        if self.last_line is not None and not due:
            return  # the common case: Tune steps many times a second
        finished = _finished(trials)
        if self.done_before is None:  # first step: what a restored phase already has
            self.done_before = len(finished)
        # The first estimate as soon as it exists; before that, a line every interval all
        # the same, so long first trials do not leave the terminal silent.
        first_estimate = self.last_line is None and len(finished) > self.done_before
        if first_estimate or due:
            self.last_line = now
            self.say(self.progress_line(finished, now))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.first_result is None:
            self.first_result = time.monotonic()

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.verbose:
            result = trial.last_result or {}
            scores = ", ".join(
                f"{name} {result[name]:.3f}"
                for name in (Report.VAL_ACC, Report.TEST_ACC)
                if name in result
            )
            self.say(f"trial {trial.trial_id} finished: {trial_name(trial.config)}: {scores}")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.say(
            f"trial {trial.trial_id} failed, restarting from its last checkpoint "
            f"({trial_name(trial.config)}): {error_line(trial)}"
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        self.say(f"trial {trial.trial_id} failed ({trial_name(trial.config)}): {error_line(trial)}")

    def on_experiment_end(self, trials, **info):
        done = len(_finished(trials))
        failed = f", {self.failed} failed" if self.failed else ""
        self.say(
            f"{done}/{self.total} trials done{failed} in {clock(time.monotonic() - self.started)}"
        )
