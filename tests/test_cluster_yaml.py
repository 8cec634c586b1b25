"""cluster.yaml and cluster.local.yaml pass Ray's own validation; `study validate` checks a
study config and a cluster file without running anything; store passwords never go in YAML."""

from __future__ import annotations

import copy

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from study.cli.cluster_file import URL
from study.config.files import load_preset, parse_config
from study.errors import ConfigError
from study.stores.urls import password
from tests.conftest import ROOT

CLUSTER_FILES = ["cluster.yaml", "cluster.local.yaml"]


def load(name: str = "cluster.yaml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_cluster_file_passes_rays_validation(name):
    config = prepare_config(load(name))
    validate_config(config)
    assert any("pip install" in command and "-e" in command for command in config["setup_commands"])
    assert any("mlflow server" in command for command in config["head_start_ray_commands"])
    assert "~/transfer-study" in config["file_mounts"]
    text = (ROOT / name).read_text()
    secrets = {password(url) for url in URL.findall(text)} - {None, "PASSWORD"}
    assert not secrets, "credentials must come from the environment"


def test_cluster_yaml_has_gpu_worker_types_and_no_trials_on_the_head():
    config = prepare_config(load())
    head = config["head_node_type"]
    assert config["available_node_types"][head]["resources"] == {"CPU": 0}
    workers = {k: v for k, v in config["available_node_types"].items() if k != head}
    assert workers and all(node["resources"].get("GPU", 0) >= 1 for node in workers.values())
    server = next(c for c in config["head_start_ray_commands"] if "mlflow server" in c)
    assert "STUDY_MLFLOW_DB" in server  # PostgreSQL from the environment
    assert "--host 127.0.0.1" in server  # no open port on the cluster network


def test_validation_rejects_an_unknown_key():
    broken = copy.deepcopy(load())
    broken["max_wrokers"] = 3
    with pytest.raises(Exception, match="max_wrokers"):
        validate_config(prepare_config(broken))


# --- study validate ----------------------------------------------------------------------


def test_validate_accepts_a_preset_and_both_cluster_files(workdir, cli_in_process):
    for name in CLUSTER_FILES:
        done = cli_in_process(["validate", "--preset", "smoke", "--cluster", str(ROOT / name)])
        assert done.returncode == 0, done.stderr
        assert "valid study config (smoke)" in done.stdout and "valid cluster file" in done.stdout
    assert list(workdir.iterdir()) == []  # nothing written


def test_validate_lists_every_problem_one_line_each_and_exits_2(workdir, cli_in_process):
    study = {
        "name": "x",
        "search": {"trails_per_size": 3, "lr": {"low": -1, "high": 0.1}},
        "stores": {"mlflow": "postgresql://study:s3cret@db:5432/mlflow"},
    }
    (workdir / "study.yaml").write_text(yaml.safe_dump(study))
    cluster = copy.deepcopy(load())
    cluster["max_wrokers"] = 3
    cluster["setup_commands"] = []
    (workdir / "cluster.yaml").write_text(yaml.safe_dump(cluster))
    done = cli_in_process(["validate", "--config", "study.yaml", "--cluster", "cluster.yaml"])
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("study validate: error: ") for line in lines), lines
    text = "\n".join(lines)
    for expected in (
        "unknown config key `search.trails_per_size`",
        "`search.lr.low`",
        "a password must not be written in a config file",
        "max_wrokers",
        "no setup command installs the project",
    ):
        assert expected in text, (expected, text)
    assert "s3cret" not in done.stdout + done.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["cluster.yaml", "study.yaml"]


def test_validate_says_when_no_worker_can_hold_a_trial(workdir, cli_in_process):
    study = load_preset("smoke").model_dump(mode="json")
    study["resources"] = {"cpu_per_trial": 4, "gpu_per_trial": 8}
    (workdir / "study.yaml").write_text(yaml.safe_dump(study))
    done = cli_in_process(
        ["validate", "--config", "study.yaml", "--cluster", str(ROOT / "cluster.yaml")]
    )
    assert done.returncode == 2
    assert "no worker node type can hold one trial" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_validate_missing_cluster_file(workdir, cli_in_process):
    done = cli_in_process(["validate", "--preset", "smoke", "--cluster", "absent.yaml"])
    assert done.returncode == 2
    assert done.stderr.strip() == "study validate: error: cluster file absent.yaml does not exist"


# --- store URLs --------------------------------------------------------------------------


def test_a_password_in_the_yaml_is_refused_with_the_env_variable_to_use():
    data = {"stores": {"optuna": "postgresql://study:s3cret@db/optuna"}}
    with pytest.raises(ConfigError) as error:
        parse_config(data, "study.yaml")
    message = str(error.value)
    assert "STUDY_OPTUNA_DB" in message and "s3cret" not in message and "\n" not in message


def test_urls_from_the_environment_are_used_and_never_shown(monkeypatch):
    monkeypatch.setenv("STUDY_MLFLOW_DB", "postgresql://study:s3cret@db/mlflow")
    monkeypatch.setenv("STUDY_OPTUNA_DB", "postgresql://study:s3cret@db/optuna")
    config = parse_config({"stores": {"mlflow": "postgresql://study@db/mlflow"}}, "x")
    assert config.stores.mlflow == "postgresql://study:s3cret@db/mlflow"
    assert config.stores.optuna == "postgresql://study:s3cret@db/optuna"
    dumped = str(config.model_dump(mode="json"))
    assert "s3cret" not in dumped and "postgresql://study:***@db/mlflow" in dumped


def test_gpu_cluster_preset_fits_both_cluster_files():
    from study.cli.cluster_file import cluster_problems
    from trainables.registry import get_arch, list_archs

    config = load_preset("gpu-cluster")
    assert config.source.weights == "torchvision" and config.resources.gpu_per_trial > 0
    with_imagenet = {a for a in list_archs() if get_arch(a).torchvision_weights}
    assert set(config.search.architectures) == with_imagenet
    for name in CLUSTER_FILES:
        assert cluster_problems(ROOT / name, config) == [], name
