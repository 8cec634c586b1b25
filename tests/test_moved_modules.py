"""A study started before study/ had rooms still resumes.

Ray pickles a phase's searcher, scheduler and callbacks, with the study config they hold,
by module path into the experiment folder (`tuner.pkl`, written with ray.cloudpickle);
`--resume` unpickles them. Here the same objects are pickled as Ray does, their module
paths turned back into the ones before the move, and loaded in a fresh interpreter: they
fail to load without study.tuning.moved and load with it (as `Tuner.restore` calls it).
"""

from __future__ import annotations

import pickletools
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from study.tuning.moved import OLD_PATHS

ROOT = Path(__file__).resolve().parents[1]
NEW_TO_OLD = {new: old for old, new in OLD_PATHS.items()}


def encoded(text: str) -> bytes:
    raw = text.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def with_old_paths(data: bytes) -> bytes:
    """`data` as the code before the move would have pickled it: every moved module's path
    is its old one. Frames are dropped (they are optional, and the strings change length)."""
    ops = list(pickletools.genops(data))
    out = bytearray()
    for index, (op, arg, pos) in enumerate(ops):
        end = ops[index + 1][2] if index + 1 < len(ops) else len(data)
        if op.name == "FRAME":
            continue
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8") and arg in NEW_TO_OLD:
            out += encoded(NEW_TO_OLD[arg])
        elif op.name == "GLOBAL" and arg.split(" ")[0] in NEW_TO_OLD:
            module, name = arg.split(" ")
            out += b"c" + f"{NEW_TO_OLD[module]}\n{name}\n".encode()
        else:
            out += data[pos:end]
    return bytes(out)


@pytest.fixture
def old_pickle(tmp_path):
    """What a phase's tuner.pkl held, as the code before the move wrote it."""
    import ray.cloudpickle as cloudpickle
    from ray.tune.schedulers import FIFOScheduler

    from study.config.files import load_preset
    from study.tracking.client import client_for
    from study.tracking.trial_logger import MlflowTrialLogger
    from study.tuning.progress import PhaseProgress
    from study.tuning.scheduler import PerStratumScheduler
    from study.tuning.searcher import FixedConfigs
    from study.tuning.tuner import DropFinishedCheckpoints

    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    phase = {
        "config": load_preset("smoke"),
        "searcher": FixedConfigs([{"lr": 0.01}], metric="val_acc"),
        "scheduler": PerStratumScheduler(FIFOScheduler, key="stratum"),
        "callbacks": [
            PhaseProgress("search", 4),
            MlflowTrialLogger(client, "1", "parent", {"lenet5": 4}, str),
            DropFinishedCheckpoints(),
        ],
    }
    data = with_old_paths(cloudpickle.dumps(phase))
    assert b"study.searcher" in data and b"study.trial_logger" in data  # old paths, really
    path = tmp_path / "tuner.pkl"
    path.write_bytes(data)
    return path


def load_in_fresh_python(path, alias: bool) -> subprocess.CompletedProcess:
    code = (
        "import pickle, sys\n"
        + ("from study.tuning.moved import alias_old_paths; alias_old_paths()\n" if alias else "")
        + f"phase = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "print(type(phase['config']).__module__, type(phase['searcher']).__module__,\n"
        "      [type(c).__module__ for c in phase['callbacks']], phase['config'].name)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_a_phase_pickled_before_the_move_loads_only_through_the_old_paths(old_pickle):
    refused = load_in_fresh_python(old_pickle, alias=False)
    assert refused.returncode != 0
    assert "ModuleNotFoundError" in refused.stderr or "AttributeError" in refused.stderr

    loaded = load_in_fresh_python(old_pickle, alias=True)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == [
        "study.config.schema",
        "study.tuning.searcher",
        "['study.tuning.progress',",
        "'study.tracking.trial_logger',",
        "'study.tuning.tuner']",
        "smoke",
    ]
