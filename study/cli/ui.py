"""`study ui [--port N]`: the MLflow UI over the study's store, on 127.0.0.1, for as long as
`study ui` runs.

What it shows where is README's "The MLflow UI"; the run and experiment descriptions it
shows are study.answer.descriptions'. The UI is this interpreter's MLflow (`python -m mlflow ui`:
no `mlflow` needed on PATH), given the real store URL in its environment
(MLFLOW_BACKEND_STORE_URI), so a PostgreSQL password works and is on no process list; what
is printed is masked. A SQLite store that does not exist is refused (the UI would create an
empty `mlflow.db`). The UI runs in a process group of its own, which is ended with
`study ui` on Ctrl-C and on SIGTERM (MLflow does not pass a SIGTERM on to its web server's
workers).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys

UI_HOST = "127.0.0.1"  # the UI shows every run and artifact: never on other interfaces
EXIT_SIGNALLED = 128  # + the signal's number: 130 for Ctrl-C, 143 for SIGTERM


def ui_command(tracking_uri: str) -> str:
    """What a user types to browse the store (printed at the end of a study)."""
    from study.stores.urls import redact

    return f"mlflow ui --backend-store-uri {redact(tracking_uri)} --host {UI_HOST}"


def port_problem(port: int) -> str | None:
    """Why the UI cannot listen on `port` of 127.0.0.1 (None: it can). Checked before the
    UI starts, because MLflow's own message for a taken port is buried in a traceback."""
    if not 1 <= port <= 65535:
        return f"--port {port}: a port is 1..65535"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a server binds: a port left in TIME_WAIT by an earlier UI is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((UI_HOST, port))
        except OSError as error:
            return (
                f"port {port} on {UI_HOST} is in use ({error.strerror}); "
                f"pass a free one: study ui --port {port + 1}"
            )
    return None


def _stop(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=10)
    except ProcessLookupError:
        return  # already gone
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def serve(tracking_uri: str, port: int, host: str = UI_HOST, workers: int = 1) -> int:
    """Run the MLflow UI until it ends or `study ui` is interrupted; its exit code.
    One worker by default: MLflow's 4 each import the whole server (seconds of CPU apiece)
    before the first page, for a UI that one person browses."""
    from study.stores.checks import check_tracking_uri
    from study.stores.urls import redact, sqlalchemy_url

    check_tracking_uri(tracking_uri)
    command = [sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port)]
    command += ["--workers", str(workers)]
    print(f"MLflow UI: http://{host}:{port} for {redact(tracking_uri)} (Ctrl-C stops it)")
    sys.stdout.flush()
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


def cmd_ui(args) -> int:
    from study.errors import BadInput
    from study.stores.checks import existing_store

    problem = port_problem(args.port)
    if problem:
        raise BadInput(problem)
    if args.workers < 1:
        raise BadInput(f"--workers {args.workers}: at least 1")
    return serve(existing_store(args.tracking_uri), args.port, workers=args.workers)


def add_parser(subparsers: argparse._SubParsersAction, tracking_uri: str) -> None:
    parser = subparsers.add_parser("ui", help="open the MLflow UI on the study store (127.0.0.1)")
    parser.add_argument("--tracking-uri", default=tracking_uri)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (default 1; MLflow's is 4)"
    )
    parser.set_defaults(func=cmd_ui)
