"""Running a shell script in a PID namespace of its own, for tests that start Ray clusters
the way users do (`ray start`, `ray up`): the `ray stop` and `ray down` in them end every
Ray process they can see, and in the namespace they see only the test's own. When the
script ends, the kernel ends every process it left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env

VENV_BIN = Path(sys.executable).parent


def namespaces_available() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "--net", "true"], capture_output=True
    )
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not namespaces_available(), reason="needs root and unshare (PID, mount, net namespaces)"
)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any pointer to another Ray cluster or MLflow store, with the
    venv's commands (`ray`, `mlflow`, `python`) first on PATH."""
    env = cli_env(drop=("MLFLOW_", "RAY_", "STUDY_"))
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env | extra


def run_in_namespace(
    script: str, cwd: Path, env: dict[str, str], timeout: float, net: bool = False
) -> subprocess.CompletedProcess:
    """`bash -c script` as PID 1's child in new PID and mount namespaces (and a network
    namespace with only loopback, when `net`)."""
    flags = ["--pid", "--fork", "--mount-proc"] + (["--net"] if net else [])
    prologue = "set -euo pipefail\n" + ("ip link set lo up\n" if net else "")
    return subprocess.run(
        ["unshare", *flags, "bash", "-c", prologue + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
