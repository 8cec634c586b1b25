"""What a user sees in the MLflow UI, read the way the UI reads it: a real `mlflow server`
on 127.0.0.1 over the smoke study's store (tests/smoke_study.py), queried through its
REST API. The experiment says what kind it is and what it asks; the study run's
description is the answer; its pictures are artifacts at the run's root; every trial run
has its training subset as a dataset input.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from study.answer.report import PICTURES
from study.config.files import load_preset
from study.tracking import client as t
from tests.conftest import run_cli

pytestmark = pytest.mark.ray
SMOKE = load_preset("smoke")
NOTE = "mlflow.note.content"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(smoke):
    """The base URL of `mlflow server` on the smoke study's store; stopped afterwards."""
    work, _, _ = smoke
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}"]
    command += ["--workers", "1"]  # MLflow's 4 each import the server first: slow to start
    process = subprocess.Popen(
        command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, process.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 120 s"
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(base: str, path: str, **query) -> dict:
    url = f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.load(reply)


def post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


def tags(entity: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in entity.get("tags", [])}


def runs(base: str, experiment_id: str, filter_string: str) -> list[dict]:
    body = {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": 1000}
    return post(base, "runs/search", body).get("runs", [])


@pytest.fixture(scope="module")
def study_run(server):
    """(experiment, parent run) as the server returns them."""
    experiment = get(server, "experiments/get-by-name", experiment_name="smoke")["experiment"]
    (parent,) = runs(server, experiment["experiment_id"], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    return experiment, parent


def test_the_experiment_opens_as_model_training_and_says_what_it_asks(study_run):
    experiment, _ = study_run
    found = tags(experiment)
    assert found["mlflow.experimentKind"] == "custom_model_development"
    description = found[NOTE]
    assert "**Question:**" in description and "digits" in description
    assert "Sizes (training examples per class): 2" in description
    assert f"Seeds: {SMOKE.target.seeds}" in description
    assert "Search space: lr 0.001..0.3" in description
    assert "`study run --preset smoke`" in description


def test_the_study_run_description_is_the_answer_and_best_freeze_prints_it(smoke, study_run):
    work, _, _ = smoke
    _, parent = study_run
    assert parent["info"]["run_name"].startswith("smoke 20")  # the study, and when
    description = tags(parent["data"])[NOTE]
    header = "| target | size/class | recommended | best strategy | test acc [95% CI] | runner-up |"
    assert header in description
    rows = [line for line in description.splitlines() if line.startswith("| digits | 2 |")]
    assert len(rows) == len(SMOKE.target.sizes)
    for section in ("Top group per size", "Tuning budget", "Wall time per phase"):
        assert f"### {section}" in description
    assert "- search_trials: " in description and "search " in description
    done = run_cli(["best-freeze", "--format", "markdown"], cwd=work)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == description.strip()


def test_the_answer_pictures_are_at_the_root_of_the_study_runs_artifacts(server, study_run):
    _, parent = study_run
    run_id = parent["info"]["run_id"]
    listed = get(server, "artifacts/list", run_id=run_id)["files"]
    files = {entry["path"] for entry in listed if not entry["is_dir"]}
    assert set(PICTURES) <= files
    query = urllib.parse.urlencode({"path": PICTURES[0], "run_uuid": run_id})
    with urllib.request.urlopen(f"{server}/get-artifact?{query}", timeout=30) as reply:
        assert reply.read(8) == b"\x89PNG\r\n\x1a\n"  # what the Artifacts tab previews


def test_every_trial_run_has_its_training_subset_as_a_dataset_input(server, study_run):
    experiment, parent = study_run
    children = runs(
        server,
        experiment["experiment_id"],
        f"tags.mlflow.parentRunId = '{parent['info']['run_id']}'",
    )
    assert children
    digests = set()
    for run in children:
        run_tags = tags(run["data"])
        size, seed = run_tags[t.TAG_SIZE], run_tags[t.TAG_SEED]
        (given,) = run["inputs"]["dataset_inputs"]
        dataset = given["dataset"]
        assert dataset["name"] == f"digits-size{size}-seed{seed}"
        assert tags(given) == {"mlflow.data.context": "training"}
        profile = json.loads(dataset["profile"])
        assert profile["examples_per_class"] == int(size) and profile["seed"] == int(seed)
        assert profile["examples"] == int(size) * profile["classes"]
        assert json.loads(dataset["source"])["dataset"] == "digits"
        digests.add((size, seed, dataset["digest"]))
        params = {p["key"] for p in run["data"]["params"]}
        assert {"size", "seed", "arch", "strategy", "freeze", "lr"} <= params
    # One subset per (size, seed): the same digest wherever the same examples were used.
    assert len(digests) == len({(size, seed) for size, seed, _ in digests})


def test_study_ui_refuses_a_port_in_use_with_one_line(smoke):
    work, _, _ = smoke
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(["ui", "--port", str(port)], cwd=work, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"study ui: error: port {port} on 127.0.0.1 is in use (Address already in use); "
        f"pass a free one: study ui --port {port + 1}"
    ]


def test_study_run_ends_with_how_to_open_the_ui_and_the_two_urls(smoke, study_run):
    _, done, _ = smoke
    experiment, parent = study_run
    where = f"http://127.0.0.1:5000/#/experiments/{experiment['experiment_id']}"
    view = "?workflowType=machine_learning"
    assert done.stdout.rstrip().splitlines()[-3:] == [
        "Browse every trial in the MLflow UI: study ui, then open",
        f"  the experiment (runs table, trials nested): {where}{view}",
        f"  the study run (the answer): {where}/runs/{parent['info']['run_id']}{view}",
    ]


def test_study_ui_names_each_studys_urls_at_its_port(smoke, study_run):
    from study.cli.ui import _study_lines

    work, _, _ = smoke
    experiment, parent = study_run
    where = f"http://127.0.0.1:5001/#/experiments/{experiment['experiment_id']}"
    view = "?workflowType=machine_learning"
    assert _study_lines(f"sqlite:///{work / 'mlflow.db'}", 5001) == [
        f"  study smoke: {where}{view}",
        f"    its latest study run: {where}/runs/{parent['info']['run_id']}{view}",
    ]


def test_a_tracking_servers_urls_are_its_own_without_its_password():
    from study.cli.ui import browse_lines, ui_address

    assert ui_address("https://me:secret@mlflow.example:8443/") == "https://mlflow.example:8443"
    assert ui_address("sqlite:///mlflow.db", 5002) == "http://127.0.0.1:5002"
    lines = browse_lines("http://me:secret@[::1]:5555", "7", "abc")
    assert lines[0] == "Browse every trial in the MLflow UI of http://[::1]:5555:"
    assert lines[2].endswith(
        ": http://[::1]:5555/#/experiments/7/runs/abc?workflowType=machine_learning"
    )
    assert "secret" not in "".join(lines)


def test_the_study_run_description_starts_with_the_decision(study_run):
    _, parent = study_run
    first, second = tags(parent["data"])[NOTE].splitlines()[:2]
    # smoke has 1 seed: no paired test, so no recommendation; the leader on validation
    assert re.fullmatch(
        r"\*\*digits, 2 per class:\*\* no recommendation yet: undecided: 1 seed, no paired "
        r"test .+; leading on validation: lenet5 \S+ \(test acc 0\.\d{3}\), \d+ contenders still in",
        first,
    ), first
    assert second == ""  # then the title and the table
