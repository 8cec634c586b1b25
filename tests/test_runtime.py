"""Where trials run, decided without a cluster: a stale `ray start` address file is not
joined, and a study whose trials this machine cannot hold stops before it writes."""

from __future__ import annotations

import pytest
import yaml

from study.config.files import load_preset
from study.tuning.runtime import ClusterTooSmall, check_trial_fits, started_cluster_address
from tests.conftest import run_cli


def test_an_address_file_of_a_cluster_that_is_gone_is_not_joined(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")
    assert started_cluster_address() is None


def test_a_node_type_the_autoscaler_can_add_is_enough():
    smoke = load_preset("smoke")
    resources = smoke.resources.model_copy(update={"gpu_per_trial": 1})
    config = smoke.model_copy(update={"resources": resources})
    head = {"CPU": 4.0}
    check_trial_fits(config, [head], [{"CPU": 8, "GPU": 1}])  # a GPU worker on demand
    check_trial_fits(config, [head], [{}])  # resources Ray detects at start: maybe
    with pytest.raises(ClusterTooSmall, match="node types it can add: none"):
        check_trial_fits(config, [head], [])
    with pytest.raises(ClusterTooSmall, match="gpu_per_trial 1"):
        check_trial_fits(config, [head], [{"CPU": 8}])


@pytest.mark.ray
def test_a_trial_this_machine_cannot_hold_stops_the_study_before_it_writes(workdir):
    config = load_preset("smoke").model_dump(mode="json")
    config["resources"]["gpu_per_trial"] = 4096
    (workdir / "big.yaml").write_text(yaml.safe_dump(config))
    done = run_cli(["run", "--config", "big.yaml"], workdir, timeout=300)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ray: started a local Ray runtime" in done.stdout
    [line] = done.stderr.strip().splitlines()
    assert "no node of the Ray cluster can hold one trial" in line
    assert {p.name for p in workdir.iterdir()} == {"big.yaml"}
