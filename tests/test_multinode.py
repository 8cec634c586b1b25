"""The smoke study on a three-node Ray cluster on this machine (`ray.cluster_utils.Cluster`:
a head and two worker nodes, each with its own CPU count): trials run on more than one
node, and every trial's result, with the node it ran on, is in MLflow."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from ray.cluster_utils import Cluster

from study import tracking as t
from study.config_file import load_preset
from study.confirm_phase import confirm_budget
from study.protocol import run_study
from study.search_phase import search_budget

pytestmark = [pytest.mark.ray, pytest.mark.slow]
CPUS = {"head": 1, "worker-a": 2, "worker-b": 1}


@pytest.fixture
def cluster(monkeypatch):
    # Ours, short (socket paths), removed after: the session's temp dir, and the "default"
    # one where Cluster writes the address of its head (RAY_TMPDIR/ray).
    root = tempfile.mkdtemp(prefix="rm-", dir="/tmp")
    temp_dir = os.path.join(root, "ray")
    os.mkdir(temp_dir)
    monkeypatch.setenv("RAY_TMPDIR", root)
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": CPUS["head"],
                "temp_dir": temp_dir,
                "include_dashboard": False,
            },
        )
        nodes = [cluster.head_node]
        nodes += [cluster.add_node(num_cpus=CPUS[name]) for name in ("worker-a", "worker-b")]
        cluster.wait_for_nodes()
        monkeypatch.setenv("RAY_ADDRESS", cluster.address)
        yield cluster, nodes
    finally:
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def test_smoke_study_spreads_over_nodes_and_records_where_trials_ran(cluster, workdir):
    _, nodes = cluster
    node_ids = {node.node_id for node in nodes}
    config = load_preset("smoke")
    answer = run_study(config, log=lambda line: None)
    assert answer and answer[0]["best"]["strategy"]

    client = MlflowClient(tracking_uri="sqlite:///mlflow.db")
    experiment = client.get_experiment_by_name(config.name)
    [parent] = client.search_runs([experiment.experiment_id], f"tags.{t.TAG_RUN_TYPE} = 'study'")
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent.info.run_id}'",
    )
    expected = search_budget(config)
    expected += confirm_budget(config)
    assert len(children) == expected
    assert all(run.info.status == "FINISHED" for run in children)
    assert all(t.METRIC_VAL_ACC in run.data.metrics for run in children)
    used = {run.data.tags[t.TAG_NODE_ID] for run in children}
    assert used <= node_ids
    assert len(used) >= 2, f"every trial ran on one node: {used}"
    assert all(run.data.tags.get(t.TAG_NODE_IP) for run in children)
