"""The trial contract: config keys are TrialConfig's fields, every report carries the same
names, and only the last report of a trial that ran all its epochs says `completed`."""

from __future__ import annotations

from dataclasses import fields

import pytest

from tests.helpers import source_state, trial_config
from trainables.contract import DRIVER_KEYS, Key, Report, TrialConfig, is_completed
from trainables.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")


def names(namespace) -> set[str]:
    return {value for name, value in vars(namespace).items() if name.isupper()}


def test_config_keys_are_the_trial_configs_fields_and_the_drivers_own():
    assert names(Key) - set(DRIVER_KEYS) == {f.name for f in fields(TrialConfig)}
    assert set(DRIVER_KEYS) <= names(Key)


def test_completed_is_an_explicit_flag_not_a_metric_being_there():
    assert is_completed({Report.COMPLETED: True})
    assert not is_completed({Report.COMPLETED: False, Report.TEST_ACC: 0.5})
    assert not is_completed({Report.TEST_ACC: 0.5})


@pytest.mark.parametrize("strategy,freeze", [("freeze-b", 2), ("knn", 4)])
def test_every_report_carries_the_contracts_names(digits, strategy, freeze):
    reports = []
    cfg = trial_config("lenet5", strategy, freeze, size=3, steps=6, reports=3)
    fit(cfg, digits, {"lenet5": source_state("lenet5")}, reports.append)
    # node_id and device: added by tune_trial
    every = names(Report) - {Report.TEST_ACC, Report.NODE_ID, Report.DEVICE}
    if strategy == "knn":
        every -= {Report.TRAIN_LOSS}  # nothing iterates
    assert all(every <= set(r) for r in reports)
    assert [is_completed(r) for r in reports] == [False, False, True]
    assert [Report.TEST_ACC in r for r in reports] == [False, False, True]
