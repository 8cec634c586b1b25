"""The driver's signal handling against a real MLflow store (SQLite): a Ctrl-C or SIGTERM
never cuts a store write in two (tests/test_faults.py stops whole studies)."""

from __future__ import annotations

import os
import signal

import pytest
from mlflow.tracking import MlflowClient

from study.stores.signals import Interrupted, interruptible, signals_held
from study.tracking import client as tracking


def test_a_signal_during_a_store_write_raises_after_it_and_the_store_stays_writable(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("driver"))
    done = []
    with pytest.raises(Interrupted) as caught, interruptible():
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in this thread
            client.set_tag(run.info.run_id, "written", "in the hold")
            done.append("the write")
        done.append("after the hold")  # not reached: the signal raises as the hold ends
    assert caught.value.exit_code == 128 + signal.SIGTERM
    assert done == ["the write"]
    # What the cleanup writes next is not locked out by a half-done transaction.
    client.set_terminated(run.info.run_id, "KILLED")
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "KILLED" and finished.data.tags["written"] == "in the hold"


class SignalAtEachWrite:
    """The real MLflow client, with a SIGTERM sent to this process as each write starts:
    a signal that lands inside a study.tracking.client function."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    def __getattr__(self, name: str):
        method = getattr(self.client, name)
        if not name.startswith(("set_", "log_", "create_", "update_")):
            return method

        def write(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            return method(*args, **kwargs)

        return write


def test_a_signal_inside_a_tracking_write_lets_every_write_of_it_finish(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("driver")).info.run_id
    with pytest.raises(Interrupted), interruptible():
        tracking.end_study_run(SignalAtEachWrite(client), run_id, "FINISHED", "finished")
    # Both of its writes (the state tag, then the status) happened before the raise.
    ended = client.get_run(run_id)
    assert ended.info.status == "FINISHED"
    assert ended.data.tags[tracking.TAG_STUDY_STATE] == "finished"
