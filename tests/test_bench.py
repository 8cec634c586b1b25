"""Each benchmark in bench/ runs in its `--quick` form and ends with its ratio line.

Nothing is asserted about the ratios themselves: they are measurements on a shared
machine (the README reports them, measured with the full commands). The three that
start Ray take one to four minutes on a loaded 2-core machine: marked `bench`, they are
left out of the default run (`make test`, CI) to keep it under its time budget; run them
with `pytest -m bench tests/test_bench.py`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RATIO = re.compile(r"^ratio .+: \d+\.\d+ \(goal (>=|<=) [\d.]+: (met|not met)\)$")


def run_bench(script: str, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as README runs them
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_hardware_bench_prints_its_ratio():
    assert RATIO.match(last_line(run_bench("hardware.py")))


@pytest.mark.ray
@pytest.mark.bench
def test_overhead_bench_prints_its_ratio():
    assert RATIO.match(last_line(run_bench("overhead.py")))


@pytest.mark.ray
@pytest.mark.bench
def test_peer_bench_prints_its_ratio():
    assert RATIO.match(last_line(run_bench("peer.py")))


@pytest.mark.ray
@pytest.mark.bench
def test_search_efficiency_bench_prints_its_ratio():
    assert RATIO.match(last_line(run_bench("search_efficiency.py")))


@pytest.mark.ray
@pytest.mark.bench
def test_time_to_answer_bench_prints_its_ratio():
    assert RATIO.match(last_line(run_bench("time_to_answer.py", timeout=900)))


def test_gpu_bench_rehearses_every_section_and_prints_its_ratio():
    # Without CUDA, --quick is the CPU rehearsal (--tiny): every section, packing K=1, 2.
    import torch

    output = run_bench("gpu.py")
    assert RATIO.match(last_line(output))
    assert "FAILED" not in output
    if not torch.cuda.is_available():
        assert "K=1:" in output and "K=2:" in output


@pytest.mark.parametrize("path", sorted((ROOT / "bench").glob("*.yaml")), ids=lambda p: p.name)
def test_every_study_file_of_the_benchmarks_is_a_valid_config(path):
    """README runs them as `study run --config bench/<name>.yaml`: each loads as the study
    would load it (schema and architecture names) and says what it is for first."""
    from study.config.files import check_names, load_config

    config = load_config(path)
    check_names(config, str(path))
    assert config.name and path.read_text().startswith("#")  # its purpose, said first


def test_the_longer_race_is_the_default_study_but_for_its_sizes_seeds_and_looks():
    """README quotes it as the default's race given more seeds: nothing else may differ."""
    from study.config.files import load_config, load_preset

    longer = load_config(ROOT / "bench" / "race_longer.yaml").model_dump()
    default = load_preset("default").model_dump()
    changed = {("target", "sizes"): [5, 10], ("target", "seeds"): 40}
    changed[("answer", "looks")] = [2, 3, 5, 10, 20, 30]
    for (section, key), value in changed.items():
        assert longer[section].pop(key) == value
        default[section].pop(key)
    assert {**longer, "name": None} == {**default, "name": None}
