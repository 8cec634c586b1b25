"""The smoke study, run once per test session, the way a user runs it: several test modules
read its stores and its terminal output (tests/test_study_e2e.py, tests/test_mlflow_ui.py),
and the CI time budget has room for one run only.

It runs through a copy of study/run.py placed in another folder, which is what `ray submit`
does with it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """(working folder, the finished `study run --preset smoke`, an MLflow client on it)."""
    # MLflow only here: conftest imports this module, and the GPU tests run where only
    # torch is installed.
    from mlflow.tracking import MlflowClient

    work = tmp_path_factory.mktemp("work")
    elsewhere = tmp_path_factory.mktemp("submitted")
    shutil.copy(ROOT / "study" / "run.py", elsewhere / "run.py")
    done = subprocess.run(
        [sys.executable, str(elsewhere / "run.py"), "--preset", "smoke"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    return work, done, client
