from __future__ import annotations

import copy

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import ROOT


def load() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_rays_validation():
    config = prepare_config(load())
    validate_config(config)
    gpu_types = [
        name
        for name, node in config["available_node_types"].items()
        if name != config["head_node_type"]
    ]
    assert gpu_types, "cluster.yaml needs a worker node type for the trials"
    assert any("pip install" in command and "-e" in command for command in config["setup_commands"])
    assert any("mlflow server" in command for command in config["head_start_ray_commands"])
    assert "postgresql://" not in (ROOT / "cluster.yaml").read_text().replace(
        "postgresql://USER:PASSWORD@", ""
    ), "credentials must come from the environment"


def test_validation_rejects_an_unknown_key():
    broken = copy.deepcopy(load())
    broken["max_wrokers"] = 3
    with pytest.raises(Exception, match="max_wrokers"):
        validate_config(prepare_config(broken))
