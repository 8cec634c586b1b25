"""`study ui`: the MLflow UI on the study store, on 127.0.0.1, for as long as `study ui` runs.

The UI is this interpreter's MLflow (`python -m mlflow ui`: no `mlflow` needed on PATH),
given the real store URL in its environment (MLFLOW_BACKEND_STORE_URI), so a PostgreSQL
password works and is on no process list; what is printed is masked. A SQLite store that
does not exist is refused (the UI would create an empty `mlflow.db`). The UI runs in a
process group of its own, which is ended with `study ui` on Ctrl-C and on SIGTERM (MLflow
does not pass a SIGTERM on to its web server's workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from study.store_checks import check_tracking_uri
from study.stores import redact, sqlalchemy_url

EXIT_SIGNALLED = 128  # + the signal's number: 130 for Ctrl-C, 143 for SIGTERM


def _stop(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=10)
    except ProcessLookupError:
        return  # already gone
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def serve(tracking_uri: str, port: int, host: str = "127.0.0.1") -> int:
    """Run the MLflow UI until it ends or `study ui` is interrupted; its exit code."""
    check_tracking_uri(tracking_uri)
    command = [sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port)]
    print(f"MLflow UI on http://{host}:{port} for {redact(tracking_uri)}", flush=True)
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": sqlalchemy_url(tracking_uri)}
    received: list[int] = []

    def interrupted(number, frame):
        received.append(number)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    child = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:
        return EXIT_SIGNALLED + (received[0] if received else signal.SIGINT)
    finally:
        _stop(child)
        signal.signal(signal.SIGTERM, previous)
