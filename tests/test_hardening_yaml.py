"""Config files that parse badly or slowly, and refusals short of what a user expects.

Valid YAML is read (merge keys, a pipe); what is absurd (an alias bomb, a 20 MB file, deep
nesting, a 5,000-digit integer) ends within a second with one line naming the file, where
in it and the problem, exit 2, nothing written; a typo is answered with the close name;
`study validate` refuses the resources `study run` would; `--resume` with a changed
question is refused before Ray starts.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from study.config.files import load_config, load_preset
from tests.conftest import STUDY, cli_env
from tests.test_hardening_config import assert_refused, files_under

FAST_S = 10  # "well under 15 s", on a shared machine of 2 cores


def alias_bomb(where: str) -> str:
    """Billion laughs: nine aliases of nine aliases ... of nine strings (9^9 values)."""
    lines = ['- &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for anchor, alias in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"- &{anchor} [{', '.join([f'*{alias}'] * 9)}]")
    body = "\n".join(f"    {line}" for line in lines)
    return f"name: bomb\ntarget:\n  augment:\n{body}\n{where}: *i\n"


def sparse_file(size: int):
    def write(folder: Path) -> bytes:
        with (folder / "study.yaml").open("wb") as file:
            file.write(b"name: big\n")
            file.truncate(size)  # 20 MB on disk in no time
        return None

    return write


# case -> (the file's content, or a function writing it and returning None; the texts
# the one line must hold)
CASES = {
    "alias bomb, the value of a key": (
        alias_bomb("name"),
        ["study.yaml", "more than 20,000 values once its aliases are expanded", "a few hundred"],
    ),
    "alias bomb, in a list": (
        "name: bomb\nsearch:\n  architectures: [&a [x, x, x, x, x, x, x, x, x, x],\n"
        + "".join(
            f"    &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}],\n" for i in range(7)
        )
        + "  ]\n",
        ["more than 20,000 values once its aliases are expanded", "line 7"],
    ),
    "many values, no alias": (
        "name: x\ntarget:\n  sizes: [" + ", ".join(["1"] * 25_000) + "]\n",
        ["more than 20,000 values (line 3)", "a few hundred"],
    ),
    "alias inside the node it names": (
        "name: x\ntarget: &t\n  sizes: [*t]\n",
        ["alias *t is inside the node it names", "line 3"],
    ),
    "nested 5,000 deep, flow": (
        "name: x\ntarget: " + "[" * 5000 + "]" * 5000 + "\n",
        ["nested deeper than 32 levels", "line 2"],
    ),
    "nested 200 deep, block": (
        "name: x\ntarget:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)),
        ["nested deeper than 32 levels", "line 33"],
    ),
    "nested deep through aliases": (
        "name: x\ntarget:\n  augment: &a " + "[" * 20 + "1" + "]" * 20 + "\n"
        "  sizes: [[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]\n",
        ["nested deeper than 32 levels once its aliases are expanded", "line 4"],
    ),
    "a file of 20 MB": (sparse_file(20_000_000), ["study.yaml", "20.0 MB", "at most 256 KiB"]),
    "a file just over the bound": (
        sparse_file(256 * 1024 + 1),
        ["study.yaml", "256 KiB", "a config file is at most 256 KiB"],
    ),
    "a 5,000-digit integer": (
        "name: x\nsearch:\n  trials_per_label: " + "7" * 5000 + "\n",
        ["`search.trials_per_label`", "an integer of 5,000 digits", "line 3", "more than 100"],
    ),
    "a 4,000-digit hex integer": (
        "name: x\ntarget:\n  seeds: 0x" + "f" * 4000 + "\n",
        ["`target.seeds`", "an integer of 4,002 digits"],
    ),
    "a 5,000-digit list entry": (
        "name: x\ntarget:\n  sizes: [1, " + "9" * 5000 + "]\n",
        ["`target.sizes.1`", "5,000 digits"],
    ),
    "a 5,000-digit key": (
        "name: x\ntarget:\n  ? " + "9" * 5000 + "\n  : 1\n",
        ["`target`", "5,000 digits"],
    ),
    "a date that is no date": (
        "name: 2024-13-45\n",
        ["`name`", "'2024-13-45' is not a valid timestamp", "month must be in 1..12"],
    ),
    "!!int on a word": (
        "name: x\ntarget:\n  seeds: !!int many\n",
        ["`target.seeds`", "'many' is not a valid int", "line 3"],
    ),
    "two merge keys in one mapping": (
        "name: x\ntarget:\n  <<: {seeds: 1}\n  <<: {sizes: [1]}\n",
        ["`target`", "merge key '<<' appears twice", "<<: [*a, *b]"],
    ),
    "a key repeated next to a merge": (
        "name: x\ntargets:\n  - &t {dataset: digits, sizes: [1]}\n"
        "  - <<: *t\n    seeds: 2\n    seeds: 3\n",
        ["key 'seeds' appears twice", "line 6"],
    ),
    "a key repeated inside a merged mapping": (
        "name: x\ntarget:\n  <<: {seeds: 1, seeds: 2}\n",
        ["key 'seeds' appears twice", "line 3"],
    ),
    "a merge of a number": ("name: x\ntarget:\n  <<: 5\n", ["not valid YAML", "for merging"]),
    "a merge of an undefined alias": (
        "name: x\ntarget:\n  <<: *nowhere\n",
        ["not valid YAML", "undefined alias 'nowhere'"],
    ),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_absurd_yaml_is_refused_fast_in_one_line(workdir, cli_in_process, case, command):
    content, expected = CASES[case]
    if callable(content):
        content = content(workdir)
    if content is not None:
        (workdir / "study.yaml").write_text(content)
    before = files_under(workdir)
    started = time.monotonic()
    done = cli_in_process([command, "--config", "study.yaml"])
    assert time.monotonic() - started < FAST_S
    assert_refused(done, expected)
    assert files_under(workdir) == before


MERGED = """\
name: merged
targets:
  - &small
    dataset: digits
    sizes: [1]
    seeds: 1
    val_per_class: 2
    test_per_class: 2
  - <<: *small
    name: digits-again
    seeds: 2
search:
  lr: &range {low: 0.001, high: 0.1}
  C:
    <<: *range
    high: 1.0
  weight_decay: {<<: [*range], low: 0.0001}
"""


def test_merge_keys_are_read_as_yaml_users_write_them(workdir, cli_in_process):
    (workdir / "study.yaml").write_text(MERGED)
    done = cli_in_process(["validate", "--config", "study.yaml"])
    assert done.returncode == 0, done.stderr
    assert "valid study config (merged)" in done.stdout
    config = load_config(workdir / "study.yaml")  # what `study run` reads
    first, second = config.target_list()
    assert (first.key, first.seeds, first.sizes) == ("digits", 1, [1])
    assert (second.key, second.seeds, second.sizes, second.val_per_class) == (
        "digits-again",
        2,
        [1],
        2,
    )
    assert config.search.lr.pair() == (0.001, 0.1)
    assert config.search.C.pair() == (0.001, 1.0)  # the merged key overridden
    assert config.search.weight_decay.pair() == (0.0001, 0.1)
    assert files_under(workdir) == {"study.yaml"}


def fifo_with(path: Path, data: bytes) -> threading.Thread:
    """A named pipe at `path` that a thread writes `data` into (as much as is read)."""
    os.mkfifo(path)

    def write() -> None:
        try:
            with path.open("wb") as pipe:
                pipe.write(data)
        except BrokenPipeError:  # the reader stopped at its bound
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


def test_a_pipe_is_read_once_as_a_stream(workdir, cli_in_process):
    writer = fifo_with(workdir / "pipe.yaml", MERGED.encode())
    done = cli_in_process(["validate", "--config", "pipe.yaml"])
    writer.join(5)
    assert done.returncode == 0, done.stderr
    assert "pipe.yaml: valid study config (merged)" in done.stdout


def test_a_pipe_beyond_the_bound_is_refused_in_one_line(workdir, cli_in_process):
    writer = fifo_with(workdir / "pipe.yaml", b"name: x\n" + b"#" * 400_000)
    started = time.monotonic()
    done = cli_in_process(["validate", "--config", "pipe.yaml"])
    writer.join(5)
    assert time.monotonic() - started < FAST_S
    assert_refused(done, ["pipe.yaml: more than 256 KiB", "a config file is at most 256 KiB"])


def test_process_substitution_is_a_config_file(workdir):
    (workdir / "x.yaml").write_text(MERGED)
    command = " ".join(STUDY) + " validate --config <(cat x.yaml)"
    done = subprocess.run(
        ["bash", "-c", command], cwd=workdir, env=cli_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "/dev/fd/" in done.stdout and "valid study config (merged)" in done.stdout


def test_presets_still_read_through_the_strict_loader():
    assert load_preset("smoke").name == "smoke"


# --- a typo gets the close name -------------------------------------------------------------

TYPOS = {
    "architecture": (
        {"search": {"architectures": ["lenet5", "resnet19"]}},
        "unknown architecture 'resnet19'; did you mean resnet18? (`study archs` lists all)",
    ),
    "architecture, another case": (
        {"search": {"architectures": ["ResNet18"]}},
        "did you mean resnet18?",
    ),
    "architecture, nothing close": (
        {"search": {"architectures": ["efficientnet_b0"]}},
        "unknown architecture 'efficientnet_b0'; registered: alexnet, cnn4,",
    ),
    "strategy": ({"search": {"strategies": ["fine-tune"]}}, "did you mean 'finetune'?"),
    "optimizer": ({"training": {"optimizer": "adamw"}}, "got 'adamw'; did you mean 'adam'?"),
    "dataset": ({"target": {"dataset": "digit"}}, "did you mean digits?"),
    "dataset kind": (
        {"target": {"dataset": "torchvison:MNIST"}},
        "did you mean torchvision:MNIST?",
    ),
    "dataset, nothing close": (
        {"target": {"dataset": "mnist"}},
        "unknown target dataset 'mnist'; allowed: digits, glyphs, imagefolder:<path>",
    ),
}


@pytest.mark.parametrize("case", sorted(TYPOS))
def test_a_typo_is_answered_with_the_close_name(workdir, cli_in_process, case):
    data, expected = TYPOS[case]
    (workdir / "study.yaml").write_text(yaml.safe_dump({"name": "typo", **data}))
    for command in ("validate", "run"):
        done = cli_in_process([command, "--config", "study.yaml"])
        assert_refused(done, [expected])
    assert files_under(workdir) == {"study.yaml"}


def test_a_preset_typo_is_answered_with_the_close_name(workdir, cli_in_process):
    done = cli_in_process(["validate", "--preset", "smok"])
    assert_refused(done, ["unknown preset 'smok'; did you mean smoke? allowed: default"])


# --- `study validate` refuses the resources `study run` refuses ------------------------------


@pytest.fixture
def no_started_cluster(monkeypatch):
    """No `ray start` cluster on this machine (which `study run` would join instead)."""
    import study.tuning.ray_env as ray_env

    monkeypatch.setattr(ray_env, "started_cluster_address", lambda: None)


def test_validate_refuses_a_trial_this_machine_cannot_hold_as_run_would(
    workdir, cli_in_process, no_started_cluster
):
    from study.config.files import parse_config
    from study.tuning.runtime import ClusterTooSmall, check_trial_fits

    data = {"name": "big", "resources": {"cpu_per_trial": 1000}}
    (workdir / "study.yaml").write_text(yaml.safe_dump(data))
    done = cli_in_process(["validate", "--config", "study.yaml"])
    with pytest.raises(ClusterTooSmall) as run_says:  # what `study run` says on a local runtime
        check_trial_fits(parse_config(data, "x"), [{"CPU": os.cpu_count(), "GPU": 0}], [])
    assert_refused(done, [f"study validate: error: {run_says.value}"])
    assert files_under(workdir) == {"study.yaml"}


def test_validate_refuses_a_gpu_trial_on_a_machine_without_one(
    workdir, cli_in_process, no_started_cluster
):
    import torch

    if torch.cuda.device_count():
        pytest.skip("this machine has a GPU")
    (workdir / "study.yaml").write_text("name: gpu\nresources:\n  gpu_per_trial: 0.5\n")
    done = cli_in_process(["validate", "--config", "study.yaml"])
    assert_refused(done, ["no node of the Ray cluster can hold one trial", "gpu_per_trial 0.5"])


def test_validate_takes_num_cpus_as_a_local_runtime_does(workdir, cli_in_process):
    (workdir / "study.yaml").write_text(
        "name: wide\nresources:\n  cpu_per_trial: 64\n  num_cpus: 64\n"
    )
    done = cli_in_process(["validate", "--config", "study.yaml"])
    assert done.returncode == 0, done.stderr


def test_validate_leaves_a_cluster_named_by_ray_address_to_the_run(
    workdir, cli_in_process, monkeypatch, no_started_cluster
):
    from study.cli.validate import resource_problems
    from study.config.files import load_config

    (workdir / "study.yaml").write_text("name: big\nresources:\n  cpu_per_trial: 1000\n")
    config = load_config(workdir / "study.yaml")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    notes = []
    assert resource_problems(config, notes) == []
    assert notes == [
        "resources.cpu_per_trial 1000, resources.gpu_per_trial 0: checked against the Ray "
        "cluster at 10.0.0.9:6379 (RAY_ADDRESS) when the study runs"
    ]
    # Through the CLI: whatever is said of the address, not that this machine is too small.
    done = cli_in_process(["validate", "--config", "study.yaml"], {"RAY_ADDRESS": "127.0.0.1:1"})
    assert "no node of the Ray cluster" not in done.stderr, done.stderr
    # RAY_ADDRESS=local is a local runtime of the study's own: checked here.
    done = cli_in_process(["validate", "--config", "study.yaml"], {"RAY_ADDRESS": "local"})
    assert_refused(done, ["no node of the Ray cluster can hold one trial", "cpu_per_trial 1000"])


def test_validate_leaves_a_cluster_ray_start_made_here_to_the_run(workdir, monkeypatch):
    import study.tuning.ray_env as ray_env
    from study.cli.validate import resource_problems
    from study.config.files import parse_config

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_env, "started_cluster_address", lambda: "10.0.0.5:6379")
    notes = []
    config = parse_config({"name": "big", "resources": {"cpu_per_trial": 1000}}, "x")
    assert resource_problems(config, notes) == []
    assert notes and "`ray start` made here, at 10.0.0.5:6379, when the study runs" in notes[0]


# --- `--resume` with a changed question: refused before Ray starts ----------------------------


@pytest.fixture
def failed_study(workdir):
    """A failed smoke study in a SQLite store in `workdir`, with its config.yaml artifact
    (made with the MLflow client, not by running the study); the config file that began it."""
    from study.tracking import client as tracking

    data = yaml.safe_load(
        (Path(__file__).parents[1] / "study/config/presets/smoke.yaml").read_text()
    )
    # An absolute URI: MLflow caches stores by URI, and each test has its own folder.
    data["stores"] = {"mlflow": f"sqlite:///{workdir / 'mlflow.db'}"}
    config = load_config_text(workdir, data)
    client = tracking.client_for(config.stores.mlflow)
    experiment = tracking.ensure_experiment(client, config.name, str(workdir / "mlartifacts"))
    dumped = config.model_dump(mode="json")
    parent = tracking.start_study_run(client, experiment, config.name, {}, config=dumped)
    tracking.end_study_run(client, parent, "FAILED", tracking.STUDY_FAILED)
    return data, client, parent


def load_config_text(workdir: Path, data: dict):
    (workdir / "study.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(workdir / "study.yaml")


def test_resume_of_a_changed_question_is_refused_before_ray_starts(
    failed_study, workdir, cli_in_process, monkeypatch
):
    import study.stages.protocol as protocol
    from study.tracking import client as tracking

    data, client, parent = failed_study
    data["target"]["seeds"] = 3  # the question changed
    load_config_text(workdir, data)

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started before the changed question was refused")

    monkeypatch.setattr(protocol, "ray_runtime", no_ray)
    before = files_under(workdir)
    started = time.monotonic()
    # As study.tracking.client sets it on import (the fixture clears MLFLOW_ variables).
    quiet = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    done = cli_in_process(["run", "--config", "study.yaml", "--resume"], quiet)
    assert time.monotonic() - started < FAST_S
    assert_refused(
        done,
        [f"--resume: the config's section target changed since study run {parent} began"],
    )
    assert files_under(workdir) == before
    run = client.get_run(parent)  # not reopened
    assert run.info.status == "FAILED" and tracking.TAG_RESUMED not in run.data.tags


def test_the_early_resume_check_passes_an_unchanged_question_and_creates_no_store(
    failed_study, workdir
):
    from study.stages.resume import check_resume

    data, _, _ = failed_study
    check_resume(load_config_text(workdir, data))  # the same question: no refusal
    data["stores"] = {"mlflow": f"sqlite:///{workdir / 'none' / 'mlflow.db'}"}
    (workdir / "none").mkdir()
    check_resume(load_config_text(workdir, data))  # no store yet: nothing to compare with
    assert not (workdir / "none" / "mlflow.db").exists()
