"""The service from Python (study.api): `study.run(...)` runs the smoke study in this process
and returns the answer `study.best_freeze()` reads back; the answer's table and lookups
(study.answer.frame); bad input raised with the commands' own lines; `import study` cheap;
README's "From Python" block, run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import pytest
import yaml

import study
from study.answer.frame import COLUMNS
from study.answer.model import Answer
from study.api import study_config
from study.errors import BadInput, ConfigError, NoStudyFound
from tests.conftest import ROOT, cli_env

PRESET = "smoke"  # one target (digits), one size (2), one seed, lenet5


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """(working folder, the Answer `study.run("smoke")` returned there, in this process)."""
    work = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)  # the stores land here (the config's relative places)
        for name in set(os.environ) - set(cli_env()):  # nobody else's store or Ray cluster
            patch.delenv(name)
        answer = study.run(PRESET)
    return work, answer


@pytest.fixture
def in_study(ran, monkeypatch):
    """The working folder of `ran`, as this test's, with a clean environment."""
    work, answer = ran
    monkeypatch.chdir(work)
    for name in set(os.environ) - set(cli_env()):
        monkeypatch.delenv(name)
    return work, answer


@pytest.mark.ray
def test_run_returns_the_answer_best_freeze_reads_back(in_study):
    work, answer = in_study
    assert isinstance(answer, Answer) and len(answer) == 1
    assert study.best_freeze() == answer  # the latest study in ./mlflow.db
    uri = f"sqlite:///{work / 'mlflow.db'}"
    again = study.best_freeze(experiment=PRESET, tracking_uri=uri)
    assert again == answer and again.to_json() == answer.to_json()
    with pytest.raises(NoStudyFound, match="no experiment named 'no-such-study'"):
        study.best_freeze(experiment="no-such-study")


@pytest.mark.ray
def test_to_frame_is_a_row_per_ranked_entry(in_study):
    _, answer = in_study
    frame = answer.to_frame()
    (item,) = answer
    assert list(frame.columns) == list(COLUMNS)
    assert frame.shape == (len(item.ranking), len(COLUMNS))
    assert list(frame["entry"]) == [entry.name for entry in item.ranking]
    assert list(frame["rank"]) == list(range(1, len(item.ranking) + 1))
    best = json.loads(answer.to_json())[0]["best"]
    first = frame.iloc[0]
    assert (first["arch"], first["strategy"], first["test_acc"]) == (
        best["arch"],
        best["strategy"],
        best["test_acc"],
    )
    assert set(frame["target"]) == {"digits"} and set(frame["size"]) == {"2"}
    assert set(frame["dataset"]) == {"digits"}
    assert list(frame["top_group"]) == [entry.top_group for entry in item.ranking]


@pytest.mark.ray
def test_best_agrees_with_the_answers_json(in_study):
    _, answer = in_study
    best = json.loads(answer.to_json())[0]["best"]
    for found in (answer.best(), answer.best(size=2), answer.best("digits", "2")):
        assert found.to_dict() == best
    with pytest.raises(
        BadInput, match=r"no size 'all' in the answer for target 'digits'; sizes: 2"
    ):
        answer.best(size="all")
    with pytest.raises(BadInput, match=r"no target 'cifar' in the answer; targets: digits"):
        answer.best(target="cifar", size=2)


@pytest.mark.ray
def test_recommendation_is_the_races_entry_or_none_without_a_race(in_study):
    _, answer = in_study
    (item,) = answer
    unraced = Answer((replace(item, race=None),))
    assert unraced.recommendation(size=2) is None  # a study from before the race
    picked = item.ranking[-1]
    race = SimpleNamespace(verdict="clear winner", recommendation=picked.name)
    raced = Answer((replace(item, race=race),))
    assert raced.recommendation() == picked
    assert raced.to_frame()["recommended"].tolist() == [e is picked for e in item.ranking]
    if item.recommendation is not None:  # the study's own race, when it ran one
        assert answer.recommendation().name == item.recommendation


@pytest.mark.ray
def test_readme_from_python_runs_as_written(in_study, monkeypatch, capsys):
    """README's block, `study.run` answered by the study this module ran (one study per
    module); everything else in it runs for real, in that study's folder."""
    _, answer = in_study
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### From Python\n\n```python\n(.*?)```", text, re.DOTALL).group(1)
    asked = []
    monkeypatch.setattr(study, "run", lambda *args, **kwargs: asked.append(args) or answer)
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102 (README's own code)
    assert asked == [(PRESET,)]
    assert answer.best(size=2).name in capsys.readouterr().out


def cli_error(cli_in_process, args: list[str]) -> str:
    """The one line the command prints for `args` (exit 2), without its `study run: error: `."""
    done = cli_in_process(args)
    assert done.returncode == 2, done.stderr
    return done.stderr.strip().split(": error: ", 1)[1]


@pytest.mark.parametrize(
    ("config", "args"),
    [
        ("smok", ["run", "--preset", "smok"]),
        ("no-such-study.yaml", ["run", "--config", "no-such-study.yaml"]),
    ],
)
def test_bad_input_raises_the_commands_line(config, args, cli_in_process):
    with pytest.raises(ConfigError) as raised:
        study.run(config)
    assert str(raised.value) == cli_error(cli_in_process, args)
    assert "did you mean smoke?" in str(raised.value) or "no-such-study.yaml" in str(raised.value)


def test_a_bad_dict_or_file_is_told_as_for_the_file(workdir, cli_in_process):
    bad = {"name": "x", "search": {"trails_per_label": 3}}
    (workdir / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as from_file:
        study.run(workdir / "bad.yaml")
    assert str(from_file.value) == cli_error(
        cli_in_process, ["run", "--config", str(workdir / "bad.yaml")]
    )
    with pytest.raises(ConfigError, match=r"^config: unknown config key `search.trails_per_label`"):
        study.run(bad)
    with pytest.raises(
        ConfigError, match="a preset name, a YAML file's path, a dict or a StudyConfig"
    ):
        study.run(42)
    assert not (workdir / "mlflow.db").exists() and not (workdir / "optuna.db").exists()


def test_best_freeze_of_no_store_raises_the_commands_line(workdir, cli_in_process):
    with pytest.raises(BadInput) as raised:
        study.best_freeze(tracking_uri="sqlite:///nothing.db")
    args = ["best-freeze", "--tracking-uri", "sqlite:///nothing.db"]
    assert str(raised.value) == cli_error(cli_in_process, args)
    assert not (workdir / "nothing.db").exists()


def test_every_kind_of_config_and_the_tracking_uri(workdir, monkeypatch):
    from study.config.files import load_preset

    monkeypatch.setenv("STUDY_MLFLOW_DB", "sqlite:///from-env.db")
    preset, command = study_config(PRESET)
    assert (
        command == f"study run --preset {PRESET}"
        and preset.stores.mlflow == "sqlite:///from-env.db"
    )
    (workdir / "mine.yaml").write_text(yaml.safe_dump({"name": "mine"}))
    for given in ("mine.yaml", workdir / "mine.yaml"):
        config, command = study_config(given)
        assert config.name == "mine" and command == f"study run --config {given}"
    config, command = study_config({"name": "mine", "target": {"sizes": [1]}})
    assert config.target.sizes == [1] and command is None
    config, command = study_config(load_preset(PRESET), tracking_uri="sqlite:///here.db")
    assert config.stores.mlflow == "sqlite:///here.db" and command is None
    with pytest.raises(ConfigError, match=r"tracking_uri: a password must not be passed here"):
        study_config(PRESET, tracking_uri="postgresql://me:secret@127.0.0.1/db")


CHEAP = """
import sys
import study
from study.errors import ConfigError
assert callable(study.run) and callable(study.best_freeze)
try:
    study.run("smok")
except ConfigError as error:
    print("refused:", error)
print(sorted(m for m in ("ray", "mlflow") if m in sys.modules))
import study.run  # the entry point's module, imported by name: study.run still runs studies
print(callable(study.run))
"""


def test_import_study_imports_no_ray_mlflow_or_torch(tmp_path):
    code = (
        "import sys\nimport study\n"
        "print(sorted(m for m in ('ray', 'mlflow', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    assert done.stdout.split() == ["[]"], done.stdout + done.stderr
    done = subprocess.run(
        [sys.executable, "-c", CHEAP], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused: unknown preset 'smok'"), done.stdout + done.stderr
    assert lines[1:] == ["[]", "True"], done.stdout + done.stderr
