"""ASHA per stratum: small-size trials are judged against their own size only."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from study.tuning.scheduler import PerStratumScheduler


def asha():
    return ASHAScheduler(
        time_attr="training_iteration", max_t=4, grace_period=1, reduction_factor=2
    )


def trial(trial_id: str, size):
    return SimpleNamespace(trial_id=trial_id, config={"size": size})


def report(scheduler, t, value, iteration=1):
    return scheduler.on_trial_result(None, t, {"training_iteration": iteration, "val_acc": value})


def test_a_small_size_trial_is_not_stopped_by_large_size_scores():
    scheduler = PerStratumScheduler(asha)
    scheduler.set_search_properties("val_acc", "max")
    big = [trial(f"big{i}", "all") for i in range(4)]
    small = trial("small", 1)
    for t in [*big, small]:
        scheduler.on_trial_add(None, t)
    for t in big:
        report(scheduler, t, 0.95)
    assert report(scheduler, small, 0.40) == TrialScheduler.CONTINUE
    assert set(scheduler.schedulers) == {"all", "1"}


def test_within_a_stratum_asha_still_stops_the_weak():
    scheduler = PerStratumScheduler(asha)
    scheduler.set_search_properties("val_acc", "max")
    trials = [trial(f"t{i}", 5) for i in range(5)]
    for t in trials:
        scheduler.on_trial_add(None, t)
    for t in trials[:4]:
        report(scheduler, t, 0.9)
    assert report(scheduler, trials[4], 0.1) == TrialScheduler.STOP
