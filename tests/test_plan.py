"""`study plan`: counts exact where the budget is fixed and bracketing where the confirm phase
races, one line and exit 2 where the plan cannot fit, JSON for scripts, nothing written to
the stores, the calibration cached and reused, and the plan's numbers on the study run.

No test depends on how long anything takes (the machines are noisy): the times are only
checked to be there and positive.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from study.answer.plan_error import plan_error_lines
from study.config.files import load_preset
from study.stages.context import search_labels
from study.stages.plan_calibration import CALIBRATION_FILE
from study.stages.plan_cost import race_trials
from study.stages.search import search_budget
from study.tracking import client as tracking
from tests.conftest import ROOT

STORES = ("mlflow.db", "optuna.db", "ray_results", "mlartifacts", "feature_cache")


def tiny(folder: Path, **sections) -> Path:
    """The smoke preset with `sections` merged over it, as a config file in `folder`."""
    data = yaml.safe_load((ROOT / "study/config/presets/smoke.yaml").read_text())
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values} if isinstance(values, dict) else values
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def plan_json(cli, *args) -> dict:
    done = cli(["plan", *args, "--format", "json"])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def phases(plan: dict) -> dict:
    return {phase["phase"]: phase for phase in plan["phases"]}


def test_a_fixed_budget_study_plan_counts_its_trials_exactly(cli_in_process, workdir):
    plan = plan_json(cli_in_process, "--preset", "smoke")
    config = load_preset("smoke")
    by_phase = phases(plan)
    search = search_budget(config, search_labels(config))
    assert by_phase["search"]["trials"] == {"min": search, "expected": search, "max": search}
    # 1 seed: one look, nothing races; every (architecture, label) confirmed once
    confirm = len(search_labels(config))
    assert by_phase["confirm"]["trials"] == {"min": confirm, "expected": confirm, "max": confirm}
    assert by_phase["pretrain"]["trials"]["expected"] == 1  # nothing cached in a new folder
    assert plan["trials"]["expected"] == search + confirm + 1
    for name in ("search", "confirm", "pretrain"):
        assert by_phase[name]["wall_seconds"]["expected"] > 0
        assert by_phase[name]["gpu_hours"]["expected"] == 0  # no GPU per trial


def test_the_racing_confirm_phase_is_bracketed(cli_in_process, workdir):
    path = tiny(workdir, target={"seeds": 5, "sizes": [1, 2]}, answer={"looks": [2, 3]})
    config_labels = search_labels(load_preset("smoke"))  # same architectures and strategies
    contenders = len(config_labels)  # one candidate per label
    confirm = phases(plan_json(cli_in_process, "--config", str(path)))["confirm"]["trials"]
    assert confirm["min"] == 2 * contenders * 2  # two sizes, all decided at the first look
    assert confirm["max"] == 2 * contenders * 5  # every contender on every seed
    assert confirm["min"] < confirm["expected"] < confirm["max"]
    assert race_trials(10, (2, 3, 5)) == (20, 30, 50)  # 10x2, then 5x1, then 2.5x2


def test_seed_zero_taken_from_the_search_is_planned_as_trials_but_not_as_training(
    cli_in_process, workdir
):
    """Round 1 on 2 seeds: seed 0's confirm runs are the search's (study.stages.reuse),
    counted as the confirm trials they are, half of round 1's training not done again."""
    plans = {}
    for reuse in (True, False):
        answer = {"looks": [], "reuse_search_runs": reuse}
        (workdir / str(reuse)).mkdir()
        path = tiny(workdir / str(reuse), target={"seeds": 2}, answer=answer)
        plans[reuse] = phases(plan_json(cli_in_process, "--config", str(path)))["confirm"]
    assert plans[True]["trials"] == plans[False]["trials"]
    reused, trained = (plans[r]["trial_seconds"]["expected"] for r in (True, False))
    assert reused == pytest.approx(trained / 2, abs=0.001)  # the JSON has 3 decimals


def test_the_json_says_every_number(cli_in_process, workdir):
    plan = plan_json(cli_in_process, "--preset", "smoke")
    assert {
        "study",
        "where",
        "trial_slots",
        "phases",
        "wall_seconds",
        "trials",
        "gpu_hours",
        "object_store_bytes",
        "stores",
        "notes",
    } <= set(plan)
    assert [p["phase"] for p in plan["phases"]] == [
        "load",
        "pretrain",
        "similarity",
        "search",
        "confirm",
        "report",
    ]
    assert set(plan["stores"]) == {"mlflow", "optuna", "ray_results", "artifacts", "checkpoints"}
    assert plan["object_store_bytes"] > 0 and plan["trial_slots"] >= 1
    low, expected, high = (plan["wall_seconds"][k] for k in ("min", "expected", "max"))
    assert 0 < low <= expected <= high


def test_plan_writes_nothing_to_the_stores_and_reuses_its_calibration(cli_in_process, workdir):
    first = plan_json(cli_in_process, "--preset", "smoke")
    assert not [name for name in STORES if (workdir / name).exists()]
    cache = workdir / "pretrained" / CALIBRATION_FILE
    assert cache.is_file()  # next to the pretrained checkpoints, and nothing else there
    assert [p.name for p in (workdir / "pretrained").iterdir()] == [CALIBRATION_FILE]
    # Reused: a calibration 10x slower per step, planted in the cache, is what the plan reads.
    data = json.loads(cache.read_text())
    slower = {
        k: {**v, "step_s": v["step_s"] * 10 + 1} if "render" not in k else v
        for k, v in data.items()
    }
    cache.write_text(json.dumps(slower))
    second = plan_json(cli_in_process, "--preset", "smoke")
    assert json.loads(cache.read_text()) == slower  # read, not measured again
    seconds = [phases(p)["search"]["trial_seconds"]["expected"] for p in (first, second)]
    assert seconds[1] > seconds[0] + 10  # 10 steps a trial, each at least 1 s more


def one_gpu_cluster(folder: Path) -> Path:
    """cluster.yaml with its 1-GPU worker type only."""
    data = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    del data["available_node_types"]["gpu_4x"]
    path = folder / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_trial_needing_2_gpus_on_nodes_of_1_exits_2_with_one_line(cli_in_process, workdir):
    path = tiny(workdir, resources={"cpu_per_trial": 1, "gpu_per_trial": 2})
    cluster = one_gpu_cluster(workdir)
    done = cli_in_process(["plan", "--config", str(path), "--cluster", str(cluster)])
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "needs 2 GPUs" in done.stderr and "no node has more than 1" in done.stderr
    assert not [name for name in STORES if (workdir / name).exists()]


def test_a_cluster_file_plan_counts_its_node_types(cli_in_process, workdir):
    path = tiny(workdir, resources={"cpu_per_trial": 2, "gpu_per_trial": 0.25})
    plan = plan_json(cli_in_process, "--config", str(path), "--cluster", str(ROOT / "cluster.yaml"))
    # 8 workers at most: 2 gpu_4x (16 trials each), then 6 gpu_1x (4 each)
    assert plan["trial_slots"] == 2 * 16 + 6 * 4
    assert any("max_workers" in note for note in plan["notes"])
    assert any("GPU" in note and "assumed" in note for note in plan["notes"])
    assert plan["gpu_hours"]["expected"] > 0


@pytest.mark.parametrize("budget", ["1s", "2"])
def test_a_wall_time_over_the_budget_exits_2_with_one_line(cli_in_process, workdir, budget):
    done = cli_in_process(["plan", "--preset", "smoke", "--budget", budget])
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "over the budget" in done.stderr


@pytest.mark.parametrize(
    "args",
    [["--budget", "soon"], ["--budget", "0"], ["--preset", "nope"], ["--address", "127.0.0.1:1"]],
)
def test_bad_input_exits_2_with_one_line(cli_in_process, workdir, args):
    done = cli_in_process(["plan", *args])
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_plan_error_compares_planned_with_taken():
    planned = tracking.planned_param
    params = {
        planned(tracking.phase_seconds_metric("search")): "100",
        planned(tracking.phase_seconds_metric("confirm")): "50",
        planned(tracking.PARAM_SEARCH_TRIALS): "40",
        planned("confirm_trials_min"): "10",
        planned("confirm_trials_expected"): "15",
        planned("confirm_trials_max"): "25",
    }
    lines = plan_error_lines(
        params, {"search": 120.0, "confirm": 30.0}, {"search": 40, "confirm": 25}
    )
    assert lines[0].startswith("plan error: the phases took 150 s, planned 150 s (+0%")
    assert "  search: 120 s, planned 100 s (+20%)" in lines
    assert "  search trials: 40, planned 40" in lines
    assert any(
        "confirm trials: 25, planned 10 / 15 / 25" in line and "inside" in line for line in lines
    )
    assert plan_error_lines({}, {"search": 1.0}, {}) == []  # a study run from before plans


@pytest.mark.ray
def test_the_study_run_logs_its_plan_and_the_plans_error(smoke):
    work, done, client = smoke
    run = tracking.latest_study_run(client, tracking.experiment_ids(client, "smoke"))
    params = run.data.params
    search = int(params[tracking.PARAM_SEARCH_TRIALS])
    assert int(params[tracking.planned_param(tracking.PARAM_SEARCH_TRIALS)]) == search
    assert float(params[tracking.planned_param("wall_seconds")]) > 0
    assert "plan error: the phases took" in done.stdout
    assert (work / "pretrained" / CALIBRATION_FILE).is_file()


def test_a_trial_over_its_share_of_gpu_memory_exits_2_with_one_line(cli_in_process, workdir):
    # ResNet-18 at 224 px, batch 512: about 14 GiB of activations; a quarter of an A10G is 6
    path = tiny(
        workdir,
        target={"image_size": 224},
        training={"batch_size": 512},
        search={"architectures": ["resnet18"]},
        resources={"cpu_per_trial": 2, "gpu_per_trial": 0.25},
    )
    done = cli_in_process(["plan", "--config", str(path), "--cluster", str(ROOT / "cluster.yaml")])
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "GiB of GPU memory" in done.stderr


def test_a_cached_checkpoint_is_not_planned_again(workdir):
    """The pretrain stage's own cache test (study.stages.pretrain): a checkpoint there is
    0 s of pretraining."""
    from study.stages.plan_targets import to_pretrain
    from study.stages.pretrain import pretrain_settings
    from trainables.pretrain import checkpoint_path

    config = load_preset("smoke")
    assert to_pretrain(config) == ["lenet5"]
    path = checkpoint_path(Path(config.stores.checkpoints), "lenet5", pretrain_settings(config))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert to_pretrain(config) == []
