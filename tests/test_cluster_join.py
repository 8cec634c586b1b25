"""`study run` joins a Ray cluster that `ray start` made, by itself: a real multi-process
cluster (a head with no CPUs for trials, and two workers, each its own `ray start`), a copy
of study/run.py in another folder, no RAY_ADDRESS. Trials spread over the workers and every
trial's result, with the node it ran on, is in MLflow; a study whose trials no node can
hold stops with one line and exit 2, before anything is written."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from study.config.files import load_preset
from study.stages.confirm import confirm_budget
from study.stages.context import search_labels
from study.stages.search import search_budget
from study.tracking import client as t
from tests.conftest import ROOT
from tests.namespace import clean_env, needs_namespaces, run_in_namespace

pytestmark = [pytest.mark.ray, pytest.mark.slow, needs_namespaces]
SMOKE = load_preset("smoke")

NODES_PY = """
import json, sys, time, ray
ray.init(address="auto", log_to_driver=False)
deadline = time.time() + 120
while sum(n["Alive"] for n in ray.nodes()) < int(sys.argv[1]) and time.time() < deadline:
    time.sleep(0.5)
print(json.dumps({n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}))
"""

SCRIPT = """
trap 'ray stop --force >/dev/null 2>&1 || true' EXIT
ray start --head --port=0 --num-cpus=0 --include-dashboard=false > head.log 2>&1
for worker in a b; do
  ray start --address="$(cat "$RAY_TMPDIR/ray/ray_current_cluster")" --num-cpus=1 \
    > "worker-$worker.log" 2>&1
done
python nodes.py 3 > nodes.json
run() {  # folder, arguments: the study as a user runs it, from that folder
  (cd "$1" && shift && timeout 300 python ../elsewhere/run.py "$@" > out.log 2> err.log
   echo $? > rc) || true
}
run too-big run --config too-big.yaml
run smoke run --preset smoke
"""


@pytest.fixture(scope="module")
def cluster_run():
    # Short and ours (Ray's socket paths must fit in 107 bytes), removed afterwards.
    root = Path(tempfile.mkdtemp(prefix="rj-", dir="/tmp"))
    try:
        for folder in ("home", "ray", "elsewhere", "smoke", "too-big"):
            (root / folder).mkdir()
        shutil.copy(ROOT / "study" / "run.py", root / "elsewhere" / "run.py")
        (root / "nodes.py").write_text(NODES_PY)
        big = SMOKE.model_dump(mode="json")
        big["resources"]["gpu_per_trial"] = 1
        (root / "too-big" / "too-big.yaml").write_text(yaml.safe_dump(big))
        env = clean_env(HOME=str(root / "home"), RAY_TMPDIR=str(root / "ray"))
        done = run_in_namespace(SCRIPT, root, env, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _output(folder: Path) -> tuple[int, str, str]:
    rc = (folder / "rc").read_text().strip()
    return int(rc), (folder / "out.log").read_text(), (folder / "err.log").read_text()


def test_trials_run_on_the_cluster_that_ray_start_made(cluster_run):
    rc, out, err = _output(cluster_run / "smoke")
    assert rc == 0, out[-3000:] + err[-3000:]
    nodes = json.loads((cluster_run / "nodes.json").read_text())
    workers = {node for node, resources in nodes.items() if resources.get("CPU")}
    assert len(workers) == 2
    assert "ray: joined the Ray cluster `ray start` made here" in out
    assert "3 node(s), 2 CPUs" in out
    assert "Best freeze strategy per target dataset size" in out

    client = MlflowClient(tracking_uri=f"sqlite:///{cluster_run / 'smoke' / 'mlflow.db'}")
    parent = t.latest_study_run(client, t.experiment_ids(client, "smoke"))
    children = t.child_runs(client, parent.info.run_id)
    labels = search_labels(SMOKE)
    assert len(children) == search_budget(SMOKE, labels) + confirm_budget(SMOKE, labels)
    assert all(run.info.status == "FINISHED" for run in children)
    assert all(t.METRIC_VAL_ACC in run.data.metrics for run in children)
    assert all(run.data.tags.get(t.TAG_NODE_IP) for run in children)
    # The head has no CPU for trials: they ran on the workers, one trial on each at a time.
    assert {run.data.tags[t.TAG_NODE_ID] for run in children} == workers


def test_a_trial_no_node_can_hold_stops_the_study_before_it_writes(cluster_run):
    rc, out, err = _output(cluster_run / "too-big")
    assert rc == 2, out[-3000:] + err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert "no node of the Ray cluster can hold one trial" in line
    assert "resources.gpu_per_trial 1" in line
    written = {p.name for p in (cluster_run / "too-big").iterdir()}
    assert written == {"too-big.yaml", "out.log", "err.log", "rc"}
