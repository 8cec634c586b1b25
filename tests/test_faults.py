"""Faults with real processes: a second driver on a running study refuses with one line
naming the first; SIGTERM stops the first cleanly (exit 143: trial runs KILLED, the study
run `interrupted`, no Optuna trial left RUNNING); `--resume` then finishes the study."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from study.config.files import load_preset
from study.tracking import client as t
from tests.conftest import STUDY, cli_env, run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def write_config(workdir: Path, long_trials: bool = True) -> None:
    """The smoke study; with `long_trials`, one that lasts long enough to be stopped."""
    data = load_preset("smoke").model_dump(mode="json", exclude={"stores"})
    data["name"] = "faults"
    if long_trials:
        data["search"]["trials_per_label"] = 2
        data["training"]["steps"] = [{"up_to": None, "steps": 300}]  # trials of a few seconds
    (workdir / "study.yaml").write_text(yaml.safe_dump(data))


def start_driver(workdir: Path, log: str) -> subprocess.Popen:
    env = cli_env()
    out = open(workdir / log, "w")  # noqa: SIM115 (the process owns it)
    return subprocess.Popen(
        STUDY + ["run", "--config", "study.yaml"],
        cwd=workdir,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def runs(client: MlflowClient, status: str | None = None) -> list:
    ids = t.experiment_ids(client, "faults")
    return t.search_runs(client, ids, status=status) if ids else []


def wait_for_a_running_trial(client: MlflowClient, driver, workdir: Path) -> None:
    deadline = time.monotonic() + 600
    while not [r for r in runs(client, "RUNNING") if r.data.tags.get(t.TAG_RUN_TYPE) == "trial"]:
        assert driver.poll() is None, (workdir / "first.log").read_text()
        assert time.monotonic() < deadline, "no trial started in 10 minutes"
        time.sleep(2)


def optuna_states(workdir: Path) -> list[TrialState]:
    url = f"sqlite:///{workdir / 'optuna.db'}"
    return [
        trial.state
        for name in optuna.get_all_study_names(url)
        for trial in optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    ]


def test_second_driver_refuses_sigterm_closes_everything_and_resume_finishes(workdir):
    write_config(workdir)
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    first = start_driver(workdir, "first.log")
    try:
        wait_for_a_running_trial(client, first, workdir)
        second = run_cli(["run", "--config", "study.yaml", "--resume"], cwd=workdir)
        assert second.returncode == 2, second.stdout + second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f":{first.pid} " in lines[0], lines
        assert "is being run by driver" in lines[0] and "Traceback" not in second.stderr

        wait_for_a_running_trial(client, first, workdir)  # (the refusal took a while)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=180) == 128 + signal.SIGTERM
    finally:
        if first.poll() is None:
            first.kill()
    output = (workdir / "first.log").read_text()
    assert "stopped by SIGTERM" in output and "--resume" in output
    assert "Traceback" not in output, output[-3000:]
    assert runs(client, "RUNNING") == []  # nothing left RUNNING in MLflow
    (study,) = [r for r in runs(client) if r.data.tags.get(t.TAG_RUN_TYPE) == "study"]
    assert study.info.status == "KILLED"
    assert study.data.tags[t.TAG_STUDY_STATE] == "interrupted"
    assert any(r.data.tags.get(t.TAG_TRIAL_STATE) == "interrupted" for r in runs(client))
    assert TrialState.RUNNING not in optuna_states(workdir)  # Optuna trials closed

    resumed = run_cli(["run", "--config", "study.yaml", "--resume"], cwd=workdir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming MLflow run" in resumed.stdout
    assert "Failed to fetch metrics" not in resumed.stdout + resumed.stderr  # Ray's, quiet
    study = client.get_run(study.info.run_id)
    assert study.info.status == "FINISHED" and study.data.tags[t.TAG_STUDY_STATE] == "finished"
    assert runs(client, "RUNNING") == []
    assert TrialState.RUNNING not in optuna_states(workdir)


def test_a_full_disk_stops_the_study_with_one_line_and_resume_finishes(workdir):
    write_config(workdir, long_trials=False)  # the disk fills up at the study's end
    artifacts = workdir / "mlartifacts"
    artifacts.mkdir()
    # Room for the study's config.yaml, not for its report: the disk fills up mid-study.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(artifacts)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        full = run_cli(["run", "--config", "study.yaml"], cwd=workdir)
        assert full.returncode == 3, full.stdout[-3000:] + full.stderr[-3000:]
        # One line of ours, the last; MLflow and Ray may log their own start-up lines first.
        lines = [line for line in full.stderr.strip().splitlines() if "study run" in line]
        assert len(lines) == 1 and full.stderr.strip().endswith(lines[0])
        assert "no space left on device" in lines[0] and "--resume" in lines[0]
        assert "Traceback" not in full.stderr
        client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
        assert runs(client, "RUNNING") == []  # nothing left RUNNING
        assert TrialState.RUNNING not in optuna_states(workdir)

        room = ["mount", "-o", "remount,size=64m", str(artifacts)]
        subprocess.run(room, check=True)  # space is back, what was written is kept
        resumed = run_cli(["run", "--config", "study.yaml", "--resume"], cwd=workdir)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    finally:
        subprocess.run(["umount", str(artifacts)], check=True)
    (study,) = [r for r in runs(client) if r.data.tags.get(t.TAG_RUN_TYPE) == "study"]
    assert study.info.status == "FINISHED" and runs(client, "RUNNING") == []
