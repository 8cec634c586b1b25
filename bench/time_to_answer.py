"""Time to an answer: the default study as it races its confirm phase against the fixed
design it had before (every label's candidates on every seed: `answer.looks: []` and
today's candidates, 3 per label up to 2 per class; seed 0 trained again instead of taken
from the search: `answer.reuse_search_runs: false`), run back to back in this command,
each in a fresh folder of its own (its own stores, its own pretraining), as a user runs
`study run`.

    python bench/time_to_answer.py [--quick] [--keep DIR]

Prints each side's wall seconds, confirm trials and verdicts per size, then the ratio of
the wall times, racing / fixed (goal <= 0.75). `--quick`: a study of smoke size (CI);
`--keep DIR`: the racing side's folder is kept there (its store answers
`study best-freeze`, e.g. to redraw README's pictures).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ on sys.path, not the repo root that `bench.*` is in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

from bench.common import ratio_line
from study.config.files import load_preset

ROOT = Path(__file__).resolve().parents[1]
FIXED = {  # today's preset when the issue was filed: no race, seed 0 trained again
    "answer": {"looks": [], "reuse_search_runs": False},
    "search": {"confirm_candidates": [{"up_to": 2, "candidates": 3}, {"candidates": 1}]},
}
QUICK = {  # the smoke study with seeds to race on and labels far enough apart to drop
    "target": {"seeds": 4},
    "training": {"steps": [{"steps": 30}]},
    "search": {"strategies": ["scratch", "finetune", "linear-probe", "logreg", "knn"]},
}


def merged(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both else value
    return out


def run_side(config: dict, folder: Path) -> dict:
    """Run the study in `folder`: wall seconds, confirm trials and each size's verdict."""
    folder.mkdir(parents=True)
    (folder / "study.yaml").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STUDY_"))}
    env["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    run = [sys.executable, "-m", "study", "run", "--config", "study.yaml"]
    done = subprocess.run(run, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"the study in {folder} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    read = [sys.executable, "-m", "study", "best-freeze", "--format", "json"]
    answer = json.loads(subprocess.check_output(read, cwd=folder, env=env, text=True))
    return {
        "seconds": seconds,
        "confirm_trials": sum(item["race"]["trials"] for item in answer),
        "verdicts": {item["size"]: item["race"]["verdict"] for item in answer},
        "recommended": {item["size"]: item["race"]["recommendation"] for item in answer},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke-sized study (CI)")
    parser.add_argument("--keep", type=Path, help="keep the racing side's folder here")
    args = parser.parse_args()
    preset = load_preset("smoke" if args.quick else "default").model_dump(
        mode="json", exclude_none=True
    )
    racing = merged(preset, QUICK) if args.quick else preset
    # the smoke study searches one configuration per label: its fixed side confirms that one
    fixed = merged(racing, {"answer": FIXED["answer"]} if args.quick else FIXED)
    work = Path(tempfile.mkdtemp(prefix="time-to-answer-"))
    try:
        sides = {}
        for name, config in (("fixed", fixed), ("racing", racing)):
            sides[name] = side = run_side(config, work / name)
            print(
                f"{name}: {side['seconds']:.0f} s, {side['confirm_trials']} confirm trials; "
                f"verdicts {side['verdicts']}; recommended {side['recommended']}",
                flush=True,
            )
        if args.keep:
            shutil.copytree(work / "racing", args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    value = sides["racing"]["seconds"] / sides["fixed"]["seconds"]
    print(ratio_line("racing / fixed wall time", value, 0.75, at_most=True))


if __name__ == "__main__":
    main()
