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

It prints, per study in the store, the URLs that land in the model-training view
(`study_urls`, also what `study run` prints at its end): MLflow 3's UI picks the GenAI or
model-training view from the browser's local storage (GenAI for a new browser) or from
the URL's `workflowType`, not from the experiment's `mlflow.experimentKind` tag.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import urllib.parse

UI_HOST = "127.0.0.1"  # the UI shows every run and artifact: never on other interfaces
UI_PORT = 5000  # `study ui`'s default
EXIT_SIGNALLED = 128  # + the signal's number: 130 for Ctrl-C, 143 for SIGTERM


def ui_address(tracking_uri: str, port: int = UI_PORT) -> str:
    """Where the UI of the store is: a tracking server's own address (without any user or
    password), else `study ui`'s on 127.0.0.1."""
    parts = urllib.parse.urlsplit(tracking_uri)
    if parts.scheme in ("http", "https") and parts.hostname:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        where = host if parts.port is None else f"{host}:{parts.port}"
        return f"{parts.scheme}://{where}{parts.path.rstrip('/')}"
    return f"http://{UI_HOST}:{port}"


def study_urls(address: str, experiment_id: str, run_id: str | None) -> list[str]:
    """The URLs that land right: the experiment's runs table (the trials nested under the
    study run) and the study run's page (the answer), both in the model-training view
    (MLflow 3's UI opens the GenAI view in a new browser, whatever the experiment's kind
    tag, unless the URL says otherwise); the experiment's only without a run."""
    view = "?workflowType=machine_learning"
    pages = [f"#/experiments/{experiment_id}"] + (
        [f"#/experiments/{experiment_id}/runs/{run_id}"] if run_id else []
    )
    return [f"{address}/{page}{view}" for page in pages]


def browse_lines(tracking_uri: str, experiment_id: str, run_id: str | None) -> list[str]:
    """What `study run` prints at its end: how to start the UI, then the two URLs."""
    from study.stores.urls import mlflow_from_env, redact

    address = ui_address(tracking_uri)
    if address.startswith(f"http://{UI_HOST}:{UI_PORT}"):
        default = tracking_uri == (mlflow_from_env() or "sqlite:///mlflow.db")
        how = "study ui" if default else f"study ui --tracking-uri {redact(tracking_uri)}"
        start = f"Browse every trial in the MLflow UI: {how}, then open"
    else:
        start = f"Browse every trial in the MLflow UI of {address}:"
    urls = study_urls(address, experiment_id, run_id)
    names = ("the experiment (runs table, trials nested)", "the study run (the answer)")
    return [start, *(f"  {name}: {url}" for name, url in zip(names, urls, strict=False))]


def _study_lines(tracking_uri: str, port: int) -> list[str]:
    """Per study in the store, its experiment's and latest study run's URLs."""
    from study.tracking import client as tracking

    client = tracking.client_for(tracking_uri)
    ids = tracking.experiment_ids(client)
    runs = tracking.search_runs(client, ids, run_type=tracking.RUN_STUDY) if ids else []
    latest: dict[str, object] = {}
    for run in sorted(runs, key=lambda run: -(run.info.start_time or 0)):
        latest.setdefault(run.info.experiment_id, run)
    lines = []
    for experiment_id, run in latest.items():
        name = run.data.tags.get(tracking.TAG_STUDY, experiment_id)
        experiment, answer = study_urls(
            ui_address(tracking_uri, port), experiment_id, run.info.run_id
        )
        lines += [f"  study {name}: {experiment}", f"    its latest study run: {answer}"]
    return lines


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


def serve(
    tracking_uri: str, port: int, host: str = UI_HOST, workers: int = 1, notes: tuple = ()
) -> int:
    """Run the MLflow UI until it ends or `study ui` is interrupted; its exit code.
    One worker by default: MLflow's 4 each import the whole server (seconds of CPU apiece)
    before the first page, for a UI that one person browses."""
    from study.stores.checks import check_tracking_uri
    from study.stores.urls import redact, sqlalchemy_url

    check_tracking_uri(tracking_uri)
    command = [sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port)]
    command += ["--workers", str(workers)]
    print(f"MLflow UI: http://{host}:{port} for {redact(tracking_uri)} (Ctrl-C stops it)")
    for line in notes:
        print(line)
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
    from study.stores.checks import check_tracking_uri, existing_store

    problem = port_problem(args.port)
    if problem:
        raise BadInput(problem)
    if args.workers < 1:
        raise BadInput(f"--workers {args.workers}: at least 1")
    store = existing_store(args.tracking_uri)
    check_tracking_uri(store)
    notes = _study_lines(store, args.port)
    return serve(store, args.port, workers=args.workers, notes=tuple(notes))


def add_parser(subparsers: argparse._SubParsersAction, tracking_uri: str) -> None:
    parser = subparsers.add_parser("ui", help="open the MLflow UI on the study store (127.0.0.1)")
    parser.add_argument("--tracking-uri", default=tracking_uri)
    parser.add_argument("--port", type=int, default=UI_PORT)
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (default 1; MLflow's is 4)"
    )
    parser.set_defaults(func=cmd_ui)
